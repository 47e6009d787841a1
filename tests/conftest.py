"""Test configuration. The environment is set before anything from kindly is imported, so every test and
every process the tests start shares one throw-away SQLite database."""
import os
import tempfile
from pathlib import Path

_TMP = Path(tempfile.mkdtemp(prefix="kindly-test-"))
# Several test runs can share a machine: KINDLY_TEST_PORT_OFFSET moves every test port.
_OFFSET = int(os.environ.get("KINDLY_TEST_PORT_OFFSET", "0"))
ENGINE_PORT, ACTION_PORT, GATEWAY_PORT, SIMULATOR_PORT = (port + _OFFSET for port in (15005, 15055, 18000, 18001))
os.environ.update(
    DATABASE_URL=os.environ.get("KINDLY_TEST_DATABASE_URL") or f"sqlite:///{_TMP / 'kindly.db'}",
    ADMIN_API_KEY="test-admin-key",
    SECRET_KEY="test-secret-key",
    TWILIO_AUTH_TOKEN="test-twilio-token",
    RASA_URL=f"http://127.0.0.1:{ENGINE_PORT}",
    KINDLY_ENV="test",
    PUBLIC_BASE_URL=f"http://127.0.0.1:{GATEWAY_PORT}",
    TWILIO_API_BASE_URL=f"http://127.0.0.1:{SIMULATOR_PORT}",
    TWILIO_ACCOUNT_SID="AC" + "1" * 32,
    TWILIO_PHONE_NUMBER="+15005550006",
    AGENT_LINE="+15005550100",
    SIMULATOR_GATEWAY_URL=f"http://127.0.0.1:{GATEWAY_PORT}",
    SIMULATOR_PORT=str(SIMULATOR_PORT),
)

import hashlib  # noqa: E402
import hmac  # noqa: E402
import itertools  # noqa: E402
import re  # noqa: E402
from datetime import date, timedelta  # noqa: E402
from decimal import Decimal  # noqa: E402
from typing import Iterable  # noqa: E402

import httpx  # noqa: E402
import pytest  # noqa: E402
from sqlalchemy import MetaData, select, text  # noqa: E402

from kindly.db import make_engine  # noqa: E402
from kindly.migrate import upgrade  # noqa: E402
from scripts import services  # noqa: E402
# PostgreSQL and Redis for the tests that need them: the local servers, throwaway ones, or a skip with the reason.
from tests.servers import postgres_server, postgres_url, rabbitmq_url, redis_url  # noqa: E402,F401

GATEWAY_URL = f"http://127.0.0.1:{GATEWAY_PORT}"
SIMULATOR_URL = f"http://127.0.0.1:{SIMULATOR_PORT}"
ADMIN_HEADERS = {"Authorization": "Bearer test-admin-key"}
_serial = itertools.count(1)


@pytest.fixture(scope="session", autouse=True)
def database() -> str:
    upgrade()
    return os.environ["DATABASE_URL"]


@pytest.fixture(scope="session")
def tmp_dir() -> Path:
    return _TMP


def account_fields(**overrides) -> dict:
    """A valid account as the API takes it; each call gets a fresh external id and phone number."""
    n = next(_serial)
    fields = dict(
        external_id=f"T-{os.getpid()}-{n}",
        name="Alex Morgan",
        phone=f"+1415555{n:04d}"[:12],
        language="en",
        timezone="America/New_York",
        country="US",
        currency="USD",
        balance="1000.00",
        minimum_due="50.00",
        days_past_due=12,
        due_date=(date.today() - timedelta(days=12)).isoformat(),
        card_last4="4242",
        date_of_birth="1985-03-05",
    )
    fields.update(overrides)
    return fields


ZH_ACCOUNT = dict(name="王芳", language="zh", timezone="Asia/Shanghai", country="CN", currency="CNY",
                  balance="8000.00", minimum_due="400.00", date_of_birth="1988-02-03")

# ---------------------------------------------------------------- after the end-to-end tests, nothing leaked
# The end of the `stack` fixture looks for the tests' secrets in every log the stack wrote and in every column of
# every table of the test databases: the dates of birth above as anyone writes them, the stored DOB hashes (except
# in accounts.dob_hmac), what tests registered with watch_for_leaks (card numbers, codes, ID numbers they text),
# and a test customer's name on a log line with a phone number. Any hit fails the run.
_WATCHED: set[str] = set()
_PHONE = re.compile(r"\+?\d[\d ()\-]{8,}\d")


def watch_for_leaks(*secrets: str) -> None:
    """Secrets a test types: the run fails if one turns up in a log or a database, with or without its separators."""
    _WATCHED.update(secrets)


def dob_spellings(dob: date) -> set[str]:
    y, m, d, month = dob.year, dob.month, dob.day, dob.strftime("%B")
    return {
        f"{y}-{m:02}-{d:02}", f"{y}{m:02}{d:02}", f"{y}/{m:02}/{d:02}", f"{y}/{m}/{d}", f"{m:02}/{d:02}/{y}",
        f"{m}/{d}/{y}", f"{d:02}/{m:02}/{y}", f"{d}/{m}/{y}", f"{y}年{m}月{d}日", f"{y}年{m}月{d}号",
        f"{y}年{m:02}月{d:02}日", f"{month} {d}, {y}", f"{month} {d} {y}", f"{d} {month} {y}",
    }


def _squash(value: str) -> str:
    return re.sub(r"[\s.\-]", "", value).lower()


# A Unix time with its fraction (the engine's event timestamps): squashed, 1796019850.305 would read as 19850305.
_UNIX_TIME = re.compile(r"(?<![\d.])1\d{9}\.\d+")


def find_leaks(secrets: Iterable[str], log_dir: Path, database_urls: Iterable[str], names: Iterable[str] = (),
               allowed: Iterable[tuple[str, str]] = ()) -> list[str]:
    """Where any of `secrets` appears (ignoring case, spaces, dashes and dots) in the files under `log_dir` or in
    any column of any table of the databases, except the (table, column) pairs `allowed`; and log lines that
    carry one of `names` with a phone number."""
    needles = {_squash(secret): secret for secret in secrets if _squash(secret)}
    hits = []

    def look(where: str, value: str) -> None:
        flat = _squash(_UNIX_TIME.sub(" ", value))
        hits.extend(f"{where}: {secret!r}" for needle, secret in needles.items() if needle in flat)

    for path in sorted(p for p in log_dir.rglob("*") if p.is_file()) if log_dir.exists() else []:
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            look(f"{path.name}:{number}", line)
            if any(name in line for name in names) and _PHONE.search(line):
                hits.append(f"{path.name}:{number}: a name with a phone number")
    for url in database_urls:
        engine = make_engine(url)
        try:
            tables = MetaData()
            tables.reflect(bind=engine)
            with engine.connect() as connection:
                for table in tables.sorted_tables:
                    for row in connection.execute(select(table)):
                        for column, value in row._mapping.items():
                            if value is not None and (table.name, column) not in allowed:
                                look(f"{url.rsplit('/', 1)[-1]} {table.name}.{column}", str(value))
        finally:
            engine.dispose()
    return hits


def _assert_nothing_leaked(log_dir: Path) -> None:
    database_urls = [os.environ["DATABASE_URL"]] + [
        f"sqlite:///{path}" for path in sorted(_TMP.glob("*.db")) if path != _TMP / "kindly.db"
    ]
    dobs = [date.fromisoformat(account_fields()["date_of_birth"]), date.fromisoformat(ZH_ACCOUNT["date_of_birth"])]
    key = os.environ["SECRET_KEY"].encode()
    secrets = set(_WATCHED) | {hmac.new(key, dob.isoformat().encode(), hashlib.sha256).hexdigest() for dob in dobs}
    for dob in dobs:
        secrets |= dob_spellings(dob)
    engine = make_engine(os.environ["DATABASE_URL"])
    with engine.connect() as connection:
        for (stored,) in connection.execute(text("SELECT dob_hmac FROM accounts")):
            secrets |= {stored, stored.rsplit("$", 1)[-1]}
    engine.dispose()
    names = {account_fields()["name"], ZH_ACCOUNT["name"]}
    hits = find_leaks(secrets, log_dir, database_urls, names, allowed={("accounts", "dob_hmac")})
    if hits:
        pytest.fail(f"{len(hits)} secrets leaked into the logs or databases under {_TMP} (tests/conftest.py, "
                    "find_leaks):\n" + "\n".join(hits[:50]), pytrace=False)


@pytest.fixture(scope="session")
def stack(database, tmp_dir):
    """The real engine (trained model), the real action server and the gateway, on test ports."""
    if not services.MODEL.exists():
        pytest.fail("no trained model: run `make test`, which trains it first")
    for port in (ENGINE_PORT, ACTION_PORT, GATEWAY_PORT, SIMULATOR_PORT):
        if services.is_up(f"http://127.0.0.1:{port}/"):
            pytest.fail(f"port {port} is already taken, probably by a stale test run; stop it first")
    env = services.base_env(RASA_URL=f"http://127.0.0.1:{ENGINE_PORT}")
    logs = tmp_dir / "logs"
    actions = services.start_action_server(ACTION_PORT, env, logs / "actions.log")
    engine = services.start_engine(ENGINE_PORT, ACTION_PORT, env, logs / "engine.log")
    gateway = services.start_gateway(GATEWAY_PORT, env, logs / "gateway.log")
    simulator = services.start_simulator(SIMULATOR_PORT, env, logs / "simulator.log") if (services.ROOT / "simulator" / "__main__.py").exists() else None
    try:
        services.wait_until_up(f"http://127.0.0.1:{ACTION_PORT}/health", actions)
        services.wait_until_up(f"{GATEWAY_URL}/health", gateway)
        if simulator:
            services.wait_until_up(f"{SIMULATOR_URL}/sim/calls", simulator)
        services.wait_until_up(f"http://127.0.0.1:{ENGINE_PORT}/", engine, timeout=300)
        yield {"gateway": GATEWAY_URL, "simulator": SIMULATOR_URL, "logs": logs}
    finally:
        services.stop(*[p for p in (simulator, gateway, engine, actions) if p])
    _assert_nothing_leaked(logs)


@pytest.fixture
def api(stack):
    with httpx.Client(base_url=stack["gateway"], headers=ADMIN_HEADERS, timeout=30) as client:
        yield client


def money(value) -> Decimal:
    return Decimal(str(value))
