"""`make run`: migrate, load the demo data, start the engine(s), the action server and the gateway, say where,
and keep them running: a process that dies is logged and started again after a backoff. Only Ctrl-C (or
SIGTERM) stops everything.

KINDLY_PROFILE=production (`make run-production`) starts the production layout on this machine: the data and
the conversations in PostgreSQL (DATABASE_URL), the engines' locks in Redis (REDIS_URL), ENGINE_INSTANCES
engines and GATEWAY_WORKERS gateway workers, and no demo data."""
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from kombu.utils.url import maybe_sanitize_url

from kindly import queue
from kindly.migrate import upgrade
from kindly.settings import DEFAULT_SECRETS, settings
from scripts import seed_demo, services
from scripts.services import Supervised

ROOT = services.ROOT
ENGINE_PORT = int(os.environ.get("RASA_PORT", "5005"))
ACTION_PORT = int(os.environ.get("ACTION_PORT", "5055"))
GATEWAY_PORT = int(os.environ.get("GATEWAY_PORT", "8000"))
SIMULATOR_PORT = int(os.environ.get("SIMULATOR_PORT", "8001"))
LOGS = Path(os.environ.get("KINDLY_LOG_DIR", ROOT / "var" / "log"))


def uses_simulator() -> bool:
    """No real Twilio credentials: Twilio's REST API and the carrier are played by the bundled simulator."""
    return settings.twilio_auth_token == DEFAULT_SECRETS["TWILIO_AUTH_TOKEN"] or "TWILIO_ACCOUNT_SID" not in os.environ


def check_stores(production: bool) -> None:
    """Say what is missing now, rather than fail on the first customer's turn."""
    if production and not settings.database_url.startswith("postgres"):
        sys.exit("the production profile keeps its data in PostgreSQL: set DATABASE_URL=postgresql://...")
    if settings.engine_instances > 1 and not services.redis_is_up(settings.redis_url):
        sys.exit(f"{settings.engine_instances} engines lock conversations in Redis, and none answers at REDIS_URL={settings.redis_url}")


def _stop_on_sigterm(*_) -> None:
    raise KeyboardInterrupt


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    production = settings.profile == "production"
    check_stores(production)
    upgrade()
    if not production:
        seed_demo.seed()
    engine_ports = [ENGINE_PORT + i for i in range(settings.engine_instances)]
    env = services.base_env(RASA_URL=services.engine_urls(engine_ports), REDIS_URL=settings.redis_url)
    simulated = uses_simulator()
    if simulated:
        env.update(
            TWILIO_API_BASE_URL=f"http://127.0.0.1:{SIMULATOR_PORT}",
            SIMULATOR_GATEWAY_URL=f"http://127.0.0.1:{GATEWAY_PORT}",
            PUBLIC_BASE_URL=env.get("PUBLIC_BASE_URL", f"http://127.0.0.1:{GATEWAY_PORT}"),
        )
    actions = Supervised("action server", lambda: services.start_action_server(ACTION_PORT, env, LOGS / "actions.log"))
    engines = [
        Supervised(f"engine {port}", lambda port=port: services.start_engine(
            port, ACTION_PORT, env, LOGS / f"engine-{port}.log", len(engine_ports)))
        for port in engine_ports
    ]
    gateway = Supervised("gateway", lambda: services.start_gateway(
        GATEWAY_PORT, env, LOGS / "gateway.log", host="0.0.0.0", workers=settings.gateway_workers))
    children = [actions, *engines, gateway]
    # Background work (kindly.queue): one worker and the beat schedule. More workers may run on other machines.
    children += [
        Supervised("worker", lambda: services.start_worker(env, LOGS / "worker.log")),
        Supervised("beat", lambda: services.start_beat(env, LOGS / "beat.log")),
    ]
    if simulated:
        children.append(Supervised("simulator", lambda: services.start_simulator(SIMULATOR_PORT, env, LOGS / "simulator.log")))
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        for child in children:
            child.launch()
        services.wait_until_up(f"http://127.0.0.1:{ACTION_PORT}/health", actions.process)
        services.wait_for_engines(engine_ports, [engine.process for engine in engines])
        services.wait_until_up(f"http://127.0.0.1:{GATEWAY_PORT}/health", gateway.process)
        print(
            f"""
Kindly is running ({settings.profile} profile).
  gateway (public)     http://127.0.0.1:{GATEWAY_PORT}   API docs: http://127.0.0.1:{GATEWAY_PORT}/docs   workers: {settings.gateway_workers}
  Rasa engine          {env["RASA_URL"]}   (loopback only)
  action server        http://127.0.0.1:{ACTION_PORT}   (loopback only)
  agent console        http://127.0.0.1:{GATEWAY_PORT}/console   password: {settings.console_password}
  Twilio               {f"simulated at http://127.0.0.1:{SIMULATOR_PORT} (open it in a browser)" if simulated else settings.twilio_api_base_url}
  database             {settings.database_url}
  task queue           {maybe_sanitize_url(queue.broker_url())}   (one worker and beat)
  conversations        {services.tracker_store_url(settings.database_url)}   locks: {"Redis " + settings.redis_url if len(engine_ports) > 1 else "in memory"}
  admin API key        {settings.admin_api_key}
  logs                 {LOGS}
{"" if production else seed_demo.describe()}
Talk to the bot in a terminal:  make chat ACCOUNT=DEMO-EN-1
A process that stops is started again. Press Ctrl-C to stop everything.""",
            flush=True,
        )
        services.supervise(children, threading.Event())
    except KeyboardInterrupt:
        pass
    finally:
        services.stop(*(child.process for child in children if child.process))


if __name__ == "__main__":
    main()
