"""PostgreSQL and Redis for the tests that need them (fixtures, made available to every test by conftest.py).

Each is the server named by the environment (KINDLY_TEST_POSTGRES, KINDLY_TEST_REDIS; by default the usual local
one) when it answers; otherwise a throwaway one started from the installed binaries in a temporary directory on
a free port and removed afterwards; otherwise the tests that need it are skipped, with the reason in the
summary (`pytest -rs`)."""
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Iterator, Optional

import psycopg
import pytest

from scripts.services import redis_is_up

POSTGRES = os.environ.get("KINDLY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
REDIS = os.environ.get("KINDLY_TEST_REDIS", "redis://127.0.0.1:6379/1")
RABBITMQ = os.environ.get("KINDLY_TEST_RABBITMQ", "amqp://guest:guest@127.0.0.1:5672//")


class Unavailable(Exception):
    """No server, and none could be started: the reason the tests are skipped."""


def postgres_is_up(server: str) -> bool:
    try:
        with psycopg.connect(f"{server}/postgres", connect_timeout=2):
            return True
    except psycopg.Error:
        return False


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _postgres_bin() -> Optional[Path]:
    """The newest installed PostgreSQL's bin directory (Debian keeps initdb and pg_ctl off the PATH)."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    found = candidates[-1] if candidates else shutil.which("initdb")
    return Path(found).parent if found and (Path(found).parent / "pg_ctl").exists() else None


def _as_server_user(command: list[str], directory: Path) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run it as the `postgres` user (or `nobody`), who owns `directory`."""
    if os.geteuid() != 0:
        return command
    user = "postgres" if _user_exists("postgres") else "nobody"
    shutil.chown(directory, user)
    return ["runuser", "-u", user, "--", *command]


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise Unavailable(f"{what} failed: {(result.stderr or result.stdout).strip()[-300:]}")


def start_throwaway_postgres(directory: Path) -> tuple[str, list[str]]:
    """initdb and pg_ctl in `directory`; returns the server URL and the command that stops it."""
    bin_dir = _postgres_bin()
    if bin_dir is None:
        raise Unavailable(f"no PostgreSQL answers at {POSTGRES} and no initdb/pg_ctl is installed (Debian: postgresql)")
    port, data = free_port(), directory / "data"
    _run(_as_server_user([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync",
                          "-E", "UTF8"], directory), "initdb")
    options = f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off"
    pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(data)]
    _run(_as_server_user([*pg_ctl, "-o", options, "-l", str(directory / "server.log"), "-w", "start"], directory), "pg_ctl start")
    return f"postgresql://postgres@127.0.0.1:{port}", _as_server_user([*pg_ctl, "-m", "immediate", "-w", "stop"], directory)


def start_throwaway_redis(directory: Path) -> tuple[str, subprocess.Popen]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise Unavailable(f"no Redis answers at {REDIS} and redis-server is not installed (Debian: redis-server)")
    port = free_port()
    server = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                               "--dir", str(directory)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/1"
    deadline = time.monotonic() + 30
    while not redis_is_up(url):
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            raise Unavailable(f"redis-server on port {port} did not start")
        time.sleep(0.1)
    return url, server


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory) -> Iterator[str]:
    """A PostgreSQL server URL without a database name."""
    if postgres_is_up(POSTGRES):
        yield POSTGRES
        return
    # Straight under /tmp: the server's user (not root) must be able to reach it.
    directory = Path(tempfile.mkdtemp(prefix="kindly-postgres-"))
    try:
        url, stop = start_throwaway_postgres(directory)
    except Unavailable as reason:
        shutil.rmtree(directory, ignore_errors=True)
        pytest.skip(str(reason))
    try:
        yield url
    finally:
        subprocess.run(stop, capture_output=True, timeout=60)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server) -> Iterator[str]:
    """A fresh database on that server, dropped after the test."""
    name = f"kindly_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{postgres_server}/{name}"
    finally:
        with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> Iterator[str]:
    """A Redis URL (database 1)."""
    if redis_is_up(REDIS):
        yield REDIS
        return
    try:
        url, server = start_throwaway_redis(tmp_path_factory.mktemp("redis"))
    except Unavailable as reason:
        pytest.skip(str(reason))
    try:
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    """The RabbitMQ server KINDLY_TEST_RABBITMQ names (default the local one, guest/guest). No throwaway one: a
    RabbitMQ node takes too long to start for a test."""
    from kombu import Connection

    try:
        with Connection(RABBITMQ, connect_timeout=3) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception as error:  # kombu raises socket, AMQP and its own errors for a server that is not there
        pytest.skip(f"RabbitMQ does not answer at {RABBITMQ}: {error}")
    return RABBITMQ
