"""`make run`: migrate, load the demo data, start the engine, the action server and the gateway, and say where."""
import os
import signal
import time

from kindly.migrate import upgrade
from kindly.settings import DEFAULT_SECRETS, settings
from scripts import seed_demo, services

ROOT = services.ROOT
ENGINE_PORT = int(os.environ.get("RASA_PORT", "5005"))
ENGINE_INSTANCES = int(os.environ.get("ENGINE_INSTANCES", "1"))
ACTION_PORT = int(os.environ.get("ACTION_PORT", "5055"))
GATEWAY_PORT = int(os.environ.get("GATEWAY_PORT", "8000"))
SIMULATOR_PORT = int(os.environ.get("SIMULATOR_PORT", "8001"))


def uses_simulator() -> bool:
    """No real Twilio credentials: Twilio's REST API and the carrier are played by the bundled simulator."""
    return settings.twilio_auth_token == DEFAULT_SECRETS["TWILIO_AUTH_TOKEN"] or "TWILIO_ACCOUNT_SID" not in os.environ


def _stop_on_sigterm(*_) -> None:
    raise KeyboardInterrupt


def main() -> None:
    upgrade()
    seed_demo.seed()
    engine_ports = [ENGINE_PORT + i for i in range(ENGINE_INSTANCES)]
    env = services.base_env(RASA_URL=services.engine_urls(engine_ports))
    simulated = uses_simulator()
    if simulated:
        env.update(
            TWILIO_API_BASE_URL=f"http://127.0.0.1:{SIMULATOR_PORT}",
            SIMULATOR_GATEWAY_URL=f"http://127.0.0.1:{GATEWAY_PORT}",
            PUBLIC_BASE_URL=env.get("PUBLIC_BASE_URL", f"http://127.0.0.1:{GATEWAY_PORT}"),
        )
    logs = ROOT / "var" / "log"
    actions = services.start_action_server(ACTION_PORT, env, logs / "actions.log")
    engines = services.start_engines(engine_ports, ACTION_PORT, env, logs)
    gateway = services.start_gateway(GATEWAY_PORT, env, logs / "gateway.log", host="0.0.0.0")
    processes = [gateway, *engines, actions]
    if simulated:
        processes.append(services.start_simulator(SIMULATOR_PORT, env, logs / "simulator.log"))
    try:
        services.wait_until_up(f"http://127.0.0.1:{ACTION_PORT}/health", actions)
        services.wait_for_engines(engine_ports, engines)
        services.wait_until_up(f"http://127.0.0.1:{GATEWAY_PORT}/health", gateway)
        print(
            f"""
Kindly is running.
  gateway (public)     http://127.0.0.1:{GATEWAY_PORT}   API docs: http://127.0.0.1:{GATEWAY_PORT}/docs
  Rasa engine          {env["RASA_URL"]}   (loopback only)
  action server        http://127.0.0.1:{ACTION_PORT}   (loopback only)
  agent console        http://127.0.0.1:{GATEWAY_PORT}/console   password: {settings.console_password}
  Twilio               {f"simulated at http://127.0.0.1:{SIMULATOR_PORT} (open it in a browser)" if simulated else settings.twilio_api_base_url}
  database             {settings.database_url}
  admin API key        {settings.admin_api_key}
  logs                 {logs}
{seed_demo.describe()}
Talk to the bot in a terminal:  make chat ACCOUNT=DEMO-EN-1
Press Ctrl-C to stop.""",
            flush=True,
        )
        signal.signal(signal.SIGTERM, _stop_on_sigterm)
        while all(p.poll() is None for p in processes):
            time.sleep(1)
        print("a process stopped; see the logs in", logs)
    except KeyboardInterrupt:
        pass
    finally:
        services.stop(*processes)


if __name__ == "__main__":
    main()
