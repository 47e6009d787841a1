"""Starting Kindly's processes (engine, action server, gateway): used by `make run`, `make chat` and the tests."""
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
ENGINE_BIN = ROOT / ".venv-engine" / "bin"
APP_BIN = ROOT / ".venv-app" / "bin"
MODEL = ROOT / "models" / "kindly.tar.gz"


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


def start_engine(port: int, action_port: int, env: dict, log: Path) -> subprocess.Popen:
    env = {**env, "ACTION_SERVER_URL": f"http://127.0.0.1:{action_port}/webhook"}
    command = [
        str(ENGINE_BIN / "rasa"), "run", "-m", str(MODEL), "-i", "127.0.0.1", "-p", str(port),
        "--credentials", str(ROOT / "credentials.yml"), "--endpoints", str(ROOT / "endpoints.yml"), "--quiet",
    ]
    return _spawn(command, env, log)


def engine_urls(ports: list[int]) -> str:
    """RASA_URL for the gateway: each conversation stays on one of these engines."""
    return ",".join(f"http://127.0.0.1:{port}" for port in ports)


def start_engines(ports: list[int], action_port: int, env: dict, logs: Path) -> list[subprocess.Popen]:
    return [start_engine(port, action_port, env, logs / f"engine-{port}.log") for port in ports]


def wait_for_engines(ports: list[int], engines: list[subprocess.Popen]) -> None:
    for port, engine in zip(ports, engines):
        wait_until_up(f"http://127.0.0.1:{port}/", engine, timeout=300)


def start_gateway(port: int, env: dict, log: Path, host: str = "127.0.0.1") -> subprocess.Popen:
    command = [str(APP_BIN / "uvicorn"), "gateway.app:app", "--host", host, "--port", str(port), "--log-level", "warning", "--ws", "none"]
    return _spawn(command, env, log)


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


def stop(*processes: subprocess.Popen) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


if __name__ == "__main__":
    sys.exit("import this module; see scripts/run.py")
