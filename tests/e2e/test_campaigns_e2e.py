"""Campaign dispatch end to end: two real Celery workers take the dispatch tasks from the broker (Redis,
RabbitMQ, and the embedded SQLite transport), reserve each contact through the contact policy, and place the calls through
the real twilio client on the Twilio simulator. Checked from the simulator's side: every account called
exactly once (no double contact between the workers), and the calls arriving at the campaign's rate (within
10%, measured as calls counted over the window, not as our code's speed). One campaign is driven through the
REST API, the other through the CLI."""
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from itertools import count
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select

from kindly.db import session_scope
from kindly.models import Account, CampaignContact, ContactAttempt
from scripts import services
from tests.conftest import ADMIN_HEADERS, GATEWAY_PORT, SIMULATOR_PORT

ACCOUNTS = 40
RATE = Decimal("2")  # calls per second: far above what the dispatch itself costs, far below the simulator's limits
SIM_PORT, GATEWAY = SIMULATOR_PORT + 9, GATEWAY_PORT + 9
# (country, time zone, a number there) covering every hour of the day with at least one window open.
PLACES = [("CN", "Asia/Shanghai", "+86137{n:08d}"), ("US", "America/New_York", "+1212555{n:04d}"),
          ("US", "America/Los_Angeles", "+1415556{n:04d}"), ("US", "Pacific/Honolulu", "+1808555{n:04d}")]
WINDOWS = {"CN": (8, 22), "US": (8, 21)}
_serial = count(int(time.time()) % 5000)


def awake_place() -> tuple[str, str, str]:
    """A place where it is now at least an hour inside the calling window, so the test runs at any hour."""
    now = datetime.now(timezone.utc)
    for country, zone, phone in PLACES:
        start, end = WINDOWS[country]
        local = now.astimezone(ZoneInfo(zone))
        if start <= local.hour and local + timedelta(hours=1) < local.replace(hour=end - 1, minute=59):
            return country, zone, phone
    raise AssertionError("no calling window open anywhere")


def make_accounts(tag: str) -> list[tuple[int, str]]:
    country, zone, phone = awake_place()
    made = []
    with session_scope() as session:
        for _ in range(ACCOUNTS):
            n = next(_serial)
            account = Account(
                external_id=f"E2E-{tag}-{n}", name="王芳" if country == "CN" else "Alex Morgan", phone=phone.format(n=n),
                language="zh" if country == "CN" else "en", timezone=zone, country=country,
                currency="CNY" if country == "CN" else "USD", balance=Decimal("800.00"), minimum_due=Decimal("40.00"),
                days_past_due=20, due_date=datetime.now(timezone.utc).date() - timedelta(days=20), card_last4="4242",
                dob_hmac="not-used", segment="early")
            session.add(account)
            session.flush()
            made.append((account.id, account.external_id))
    return made


@pytest.fixture(scope="module")
def simulator(tmp_dir):
    env = services.base_env(SIMULATOR_PORT=str(SIM_PORT), SIMULATOR_GATEWAY_URL=f"http://127.0.0.1:{GATEWAY}",
                            PUBLIC_BASE_URL=f"http://127.0.0.1:{GATEWAY}")
    process = services.start_simulator(SIM_PORT, env, tmp_dir / "logs" / "campaign-simulator.log")
    url = f"http://127.0.0.1:{SIM_PORT}"
    try:
        services.wait_until_up(f"{url}/sim/calls", process)
        yield url
    finally:
        services.stop(process)


def worker_env(broker: str, simulator: str) -> dict:
    return services.base_env(KINDLY_BROKER_URL=broker, TWILIO_API_BASE_URL=simulator, KINDLY_DISPATCH_TASKS="2",
                             PUBLIC_BASE_URL=f"http://127.0.0.1:{GATEWAY}")


def start_workers(env: dict, logs: Path, tag: str) -> list[subprocess.Popen]:
    return [services.start_worker(env, logs / f"worker-{tag}-{i}.log", concurrency=1, name=f"{tag}{i}@%h") for i in (1, 2)]


def watch_calls(simulator: str, phones: set[str], timeout: float = 90) -> tuple[list[tuple[float, int]], list[dict]]:
    """(time, calls to our phones so far), sampled every 0.1 s until all have been called (and a little after, to
    see a second call if there were one)."""
    samples, deadline, done_at = [], time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        asked = time.monotonic()
        calls = [c for c in httpx.get(f"{simulator}/sim/calls", timeout=10).json() if c["to"] in phones]
        samples.append(((asked + time.monotonic()) / 2, len(calls)))  # the count held at some moment of the request
        if len(calls) >= len(phones) and done_at is None:
            done_at = time.monotonic()
        if done_at is not None and time.monotonic() - done_at > 3:
            return samples, calls
        time.sleep(0.1)
    return samples, calls


def observed_rate(samples: list[tuple[float, int]], total: int) -> float:
    """Calls per second from the first sample that saw a call to the first that saw them all: the calls counted
    in between over the time between (the first sample may already see several, if dispatch began before it)."""
    first_time, first_count = next((t, n) for t, n in samples if n >= 1)
    last_time = next(t for t, n in samples if n >= total)
    return (total - first_count) / (last_time - first_time)


def check_dispatch(simulator: str, accounts: list[tuple[int, str]], logs: Path, tag: str) -> None:
    ids = [account_id for account_id, _ in accounts]
    with session_scope() as session:
        phones = set(session.scalars(select(Account.phone).where(Account.id.in_(ids))))
    samples, calls = watch_calls(simulator, phones)
    assert sorted(c["to"] for c in calls) == sorted(phones)  # each account called, and only once
    rate = observed_rate(samples, len(phones))
    print(f"{tag}: {len(phones)} calls at {rate:.3f} calls/s (configured {RATE})")
    assert float(RATE) * 0.9 <= rate <= float(RATE) * 1.1, f"{rate:.2f} calls/s for {RATE} configured"
    with session_scope() as session:
        attempts = session.scalar(select(func.count()).where(ContactAttempt.account_id.in_(ids)))
        rows = session.scalars(select(CampaignContact).where(CampaignContact.account_id.in_(ids))).all()
    assert attempts == ACCOUNTS
    assert sorted(row.status for row in rows) == ["sent"] * ACCOUNTS and all(row.attempt_id for row in rows)
    for i in (1, 2):  # both workers took a dispatch task
        assert "kindly.campaigns.dispatch" in (logs / f"worker-{tag}-{i}.log").read_text(errors="replace")


def networked_broker(request, name: str) -> str:
    """A broker of this test's own on the local Redis (a database nobody else uses) or RabbitMQ (the task queue
    emptied first), so no other worker takes its tasks and no earlier run's task is left in it."""
    if name == "redis":
        import redis

        broker = request.getfixturevalue("redis_url").rsplit("/", 1)[0] + "/13"
        redis.Redis.from_url(broker).flushdb()
        return broker
    from kombu import Connection
    from amqp.exceptions import NotFound

    broker = request.getfixturevalue("rabbitmq_url")
    with Connection(broker) as connection:
        try:
            connection.default_channel.queue_purge("kindly")
        except NotFound:
            pass  # no queue yet: the first worker declares it
    return broker


@pytest.mark.parametrize("name", ["redis", "rabbitmq"])
def test_dispatch_on_a_networked_broker_through_the_api(simulator, request, tmp_dir, name):
    broker = networked_broker(request, name)
    logs = tmp_dir / "logs"
    env = worker_env(broker, simulator)
    workers = start_workers(env, logs, name)
    gateway = services.start_gateway(GATEWAY, env, logs / f"campaign-gateway-{name}.log")
    try:
        services.wait_until_up(f"http://127.0.0.1:{GATEWAY}/health", gateway)
        accounts = make_accounts(name.upper())
        with httpx.Client(base_url=f"http://127.0.0.1:{GATEWAY}", headers=ADMIN_HEADERS, timeout=30) as api:
            created = api.post("/api/campaigns", json={
                "name": f"e2e-{name}-{accounts[0][0]}", "filter": {"external_ids": [e for _, e in accounts]},
                "plan": "voice", "calls_per_second": str(RATE)})
            assert created.status_code == 201, created.text
            campaign = created.json()
            assert (campaign["status"], campaign["progress"]["accounts"]) == ("draft", 0)
            started = api.post(f"/api/campaigns/{campaign['id']}/start")
            assert started.status_code == 200, started.text
            assert (started.json()["status"], started.json()["progress"]["accounts"]) == ("running", ACCOUNTS)
            check_dispatch(simulator, accounts, logs, name)
            progress = api.get(f"/api/campaigns/{campaign['id']}").json()["progress"]
            assert (progress["contacted"], progress["attempts"], progress["steps"]) == (ACCOUNTS, ACCOUNTS, {"sent": ACCOUNTS})
            assert api.post(f"/api/campaigns/{campaign['id']}/resume").status_code == 409
            assert api.post(f"/api/campaigns/{campaign['id']}/pause").json()["status"] == "paused"
            assert api.get("/api/campaigns/999999").status_code == 404
            assert api.post("/api/campaigns", json={"name": "bad", "plan": "fax"}).status_code == 422
            assert api.post("/api/campaigns", json={"name": campaign["name"]}).status_code == 409
    finally:
        services.stop(gateway, *workers)


def test_dispatch_on_the_embedded_transport_through_the_cli(simulator, tmp_dir):
    broker = f"sqla+sqlite:///{tmp_dir / 'campaign-broker.db'}"
    logs = tmp_dir / "logs"
    env = worker_env(broker, simulator)
    workers = start_workers(env, logs, "embedded")
    try:
        accounts = make_accounts("EMBEDDED")
        cli = [sys.executable, "-m", "kindly", "campaign"]
        created = subprocess.run(cli + ["create", f"e2e-embedded-{accounts[0][0]}", "--plan", "voice", "--calls-per-second", str(RATE),
                                        "--filter", '{"external_ids": [%s]}' % ", ".join(f'"{e}"' for _, e in accounts)],
                                 env=env, capture_output=True, text=True, timeout=60, cwd=services.ROOT)
        assert created.returncode == 0, created.stderr
        import json

        campaign_id = json.loads(created.stdout)["id"]
        started = subprocess.run(cli + ["start", str(campaign_id)], env=env, capture_output=True, text=True, timeout=60, cwd=services.ROOT)
        assert started.returncode == 0, started.stderr
        assert json.loads(started.stdout)["progress"]["accounts"] == ACCOUNTS
        check_dispatch(simulator, accounts, logs, "embedded")
        status = subprocess.run(cli + ["status", str(campaign_id)], env=env, capture_output=True, text=True, timeout=60, cwd=services.ROOT)
        assert json.loads(status.stdout)["progress"]["contacted"] == ACCOUNTS
    finally:
        services.stop(*workers)
