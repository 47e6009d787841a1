"""`make run`'s launcher: the supervisor starts again a process that dies (after a backoff, and says so), and each
engine is told where the conversations and the locks live."""
import subprocess
import sys
import threading
import time

import pytest

from scripts import services
from scripts.services import Supervised, backoff, engine_env, supervise, tracker_store_url


def sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])


def wait_for_a_new_process(child: Supervised, old: subprocess.Popen) -> subprocess.Popen:
    deadline = time.monotonic() + 30
    while child.process is old or child.process.poll() is not None:
        assert time.monotonic() < deadline, "the supervisor did not start the process again"
        time.sleep(0.05)
    return child.process


@pytest.fixture
def supervised():
    child = Supervised("sleeper", sleeper)
    child.launch()
    stop = threading.Event()
    supervisor = threading.Thread(target=supervise, args=([child], stop), kwargs={"poll": 0.05})
    supervisor.start()
    yield child
    stop.set()
    supervisor.join()
    services.stop(child.process)


def test_a_process_that_dies_is_started_again_with_a_growing_backoff(supervised, caplog):
    first = supervised.process
    first.kill()
    second = wait_for_a_new_process(supervised, first)
    assert second.pid != first.pid
    second.kill()
    third = wait_for_a_new_process(supervised, second)
    assert third.poll() is None
    assert "sleeper: exited with code -9; starting it again in 1 s" in caplog.text
    assert "sleeper: exited with code -9; starting it again in 2 s" in caplog.text
    assert f"sleeper: starting again (pid {third.pid})" in caplog.text


def test_a_process_that_had_been_running_a_while_gets_the_first_backoff_again(supervised, caplog, monkeypatch):
    monkeypatch.setattr(services, "STABLE_AFTER", 0.0)
    first = supervised.process
    first.kill()
    second = wait_for_a_new_process(supervised, first)
    second.kill()
    wait_for_a_new_process(supervised, second)
    assert caplog.text.count("starting it again in 1 s") == 2 and "in 2 s" not in caplog.text


def test_backoff_doubles_up_to_thirty_seconds():
    assert [backoff(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


@pytest.mark.parametrize("database_url, tracker_url", [
    ("sqlite:////srv/kindly/kindly.db", "sqlite:////srv/kindly/kindly-tracker.db"),
    ("sqlite:///var/kindly.db", f"sqlite:///{services.ROOT}/var/kindly-tracker.db"),
    ("postgresql://kindly:secret@db:5432/kindly", "postgresql://kindly:secret@db:5432/kindly"),
    ("postgresql+psycopg://kindly@db/kindly", "postgresql://kindly@db/kindly"),
])
def test_conversations_live_beside_the_data(database_url, tracker_url):
    assert tracker_store_url(database_url) == tracker_url


def test_one_engine_locks_in_memory_and_several_in_redis(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}", "REDIS_URL": "redis://10.0.0.7:6380/3"}
    one, several = engine_env(env, 1), engine_env(env, 2)
    assert one["LOCK_STORE_TYPE"] == "in_memory"
    assert (several["LOCK_STORE_TYPE"], several["LOCK_STORE_HOST"], several["LOCK_STORE_PORT"], several["LOCK_STORE_DB"]) == (
        "redis", "10.0.0.7", "6380", "3")
    assert one["TRACKER_STORE_URL"] == f"sqlite:///{tmp_path / 'app-tracker.db'}"
    assert (tmp_path / "app-tracker.db").exists()
