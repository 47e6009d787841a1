"""Starting Kindly's processes (engine, action server, gateway): used by `make run`, `make chat` and the tests."""
import logging
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional
from urllib.parse import urlsplit

import httpx

from kindly.settings import settings

ROOT = Path(__file__).resolve().parent.parent
ENGINE_BIN = ROOT / ".venv-engine" / "bin"
APP_BIN = ROOT / ".venv-app" / "bin"
MODEL = ROOT / "models" / "kindly.tar.gz"
logger = logging.getLogger("kindly.run")


def base_env(**overrides: str) -> dict:
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(ROOT),
        RASA_TELEMETRY_ENABLED="false",
        TF_CPP_MIN_LOG_LEVEL="3",
        SANIC_HOST="127.0.0.1",
    )
    env.update(overrides)
    return env


def start_action_server(port: int, env: dict, log: Path) -> subprocess.Popen:
    # rasa-sdk's server, except that an action error is not answered with the whole tracker (the engine logs it).
    return _spawn([str(APP_BIN / "python"), "-m", "scripts.action_server", "-p", str(port)], env, log)


def tracker_store_url(database_url: str) -> str:
    """Where the engines keep conversations, for Rasa's SQLTrackerStore (SQLAlchemy 1.4 and psycopg2 in the
    engine venv). PostgreSQL: the application's own database. SQLite: a file next to it, because SQLite takes
    one writer per file at a time, and the engine writes after every turn while the gateway and the action
    server write the same turn's records; apart, neither waits for the other's lock."""
    scheme, _, rest = database_url.partition("://")
    if scheme.startswith("postgres"):
        return f"postgresql://{rest}"
    path = Path(database_url.removeprefix("sqlite:///"))
    path = path if path.is_absolute() else ROOT / path
    return f"sqlite:///{path.with_name(f'{path.stem}-tracker{path.suffix}')}"


def prepare_tracker_store(url: str) -> None:
    """A SQLite tracker file in WAL mode (a setting kept in the file), so one engine reads while another
    writes; Rasa's own connections set no pragmas."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(path) as connection:
            connection.execute("PRAGMA journal_mode=WAL")


def engine_env(env: dict, instances: int) -> dict:
    """What endpoints.yml reads: the SQL tracker store, and the lock store: in memory for one engine, Redis
    (REDIS_URL) when several serve the same conversations."""
    tracker = tracker_store_url(env.get("DATABASE_URL") or settings.database_url)
    prepare_tracker_store(tracker)
    redis = urlsplit(env.get("REDIS_URL") or settings.redis_url)
    return {
        **env,
        "TRACKER_STORE_URL": tracker,
        "LOCK_STORE_TYPE": "redis" if instances > 1 else "in_memory",
        "LOCK_STORE_HOST": redis.hostname or "127.0.0.1",
        "LOCK_STORE_PORT": str(redis.port or 6379),
        "LOCK_STORE_DB": redis.path.strip("/") or "0",
        # A conversation's lock frees itself after this (Rasa's default is 60 s), so a lock left by an engine that
        # died mid-turn holds that conversation up for 15 s at most: Twilio gives up on a webhook after 15 s too.
        "TICKET_LOCK_LIFETIME": "15",
    }


def start_engine(port: int, action_port: int, env: dict, log: Path, instances: int = 1) -> subprocess.Popen:
    env = {**engine_env(env, instances), "ACTION_SERVER_URL": f"http://127.0.0.1:{action_port}/webhook"}
    command = [
        str(ENGINE_BIN / "rasa"), "run", "-m", str(MODEL), "-i", "127.0.0.1", "-p", str(port),
        "--credentials", str(ROOT / "credentials.yml"), "--endpoints", str(ROOT / "endpoints.yml"), "--quiet",
    ]
    return _spawn(command, env, log)


def engine_urls(ports: list[int]) -> str:
    """RASA_URL for the gateway: any of these engines serves any conversation."""
    return ",".join(f"http://127.0.0.1:{port}" for port in ports)


def start_engines(ports: list[int], action_port: int, env: dict, logs: Path) -> list[subprocess.Popen]:
    return [start_engine(port, action_port, env, logs / f"engine-{port}.log", len(ports)) for port in ports]


def wait_for_engines(ports: list[int], engines: list[subprocess.Popen]) -> None:
    for port, engine in zip(ports, engines):
        wait_until_up(f"http://127.0.0.1:{port}/", engine, timeout=300)


def start_gateway(port: int, env: dict, log: Path, host: str = "127.0.0.1", workers: int = 1) -> subprocess.Popen:
    """With several workers, uvicorn's parent process shares the port among them and restarts one that dies."""
    command = [str(APP_BIN / "uvicorn"), "gateway.app:app", "--host", host, "--port", str(port), "--log-level", "warning", "--ws", "none"]
    return _spawn(command + (["--workers", str(workers)] if workers > 1 else []), env, log)


def start_simulator(port: int, env: dict, log: Path) -> subprocess.Popen:
    return _spawn([str(APP_BIN / "python"), "-m", "simulator"], {**env, "SIMULATOR_PORT": str(port)}, log)


def start_worker(env: dict, log: Path, concurrency: int = 2, name: str = "kindly@%h") -> subprocess.Popen:
    """A Celery worker of kindly.queue, on the broker KINDLY_BROKER_URL names (the embedded one by default)."""
    command = [str(APP_BIN / "celery"), "-A", "kindly.queue", "worker", "--loglevel", "INFO", "--concurrency", str(concurrency), "-n", name]
    return _spawn(command, env, log)


def start_beat(env: dict, log: Path) -> subprocess.Popen:
    """Celery beat: the follow-through sweep every minute. Exactly one per installation, however many workers."""
    return _spawn([str(APP_BIN / "celery"), "-A", "kindly.queue", "beat", "--loglevel", "INFO"], env, log)


def _spawn(command: list, env: dict, log: Path) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def wait_until_up(url: str, process: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode} before {url} came up")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not come up within {timeout}s")


def is_up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code < 500
    except httpx.HTTPError:
        return False


def redis_is_up(url: str) -> bool:
    """A Redis server answers PING at this redis:// URL."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=1) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def stop(*processes: subprocess.Popen) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


BACKOFF_FIRST, BACKOFF_MAX = 1.0, 30.0
# A process that ran this long before it died starts again after the first backoff, not a longer one.
STABLE_AFTER = 60.0


@dataclass
class Supervised:
    """A process `make run` keeps alive: `start` launches it again after it dies."""

    name: str
    start: Callable[[], subprocess.Popen]
    process: Optional[subprocess.Popen] = None
    started_at: float = 0.0
    failures: int = 0
    restart_at: Optional[float] = None

    def launch(self) -> subprocess.Popen:
        self.process, self.started_at, self.restart_at = self.start(), time.monotonic(), None
        return self.process


def backoff(failures: int) -> float:
    """1, 2, 4 ... 30 s after the 1st, 2nd, 3rd ... death in a row."""
    return min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (failures - 1))


def supervise(children: list[Supervised], stop: threading.Event, poll: float = 0.5) -> None:
    """Until `stop` is set (or Ctrl-C): a child that exits is logged and started again after a backoff."""
    while not stop.wait(poll):
        now = time.monotonic()
        for child in children:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    logger.warning("%s: starting again (pid %s)", child.name, child.launch().pid)
            elif child.process.poll() is not None:
                child.failures = 1 if now - child.started_at >= STABLE_AFTER else child.failures + 1
                delay = backoff(child.failures)
                child.restart_at = now + delay
                logger.warning("%s: exited with code %s; starting it again in %g s", child.name, child.process.returncode, delay)


if __name__ == "__main__":
    sys.exit("import this module; see scripts/run.py")
