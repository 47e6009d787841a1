"""Soak: 50 concurrent simulated calls for 5 minutes through the Twilio webhooks, against a stack it starts itself.

The stack is `make run` (scripts/run.py, so the supervisor too) on its own ports and a database of its own: the
local profile by default (SQLite, one engine), or `--profile production` (a throwaway PostgreSQL database on
--postgres, Redis at REDIS_URL, --engines engines, --workers gateway workers).

Each simulated caller places inbound calls one after another until the time is up, each for a new account
(created through the REST API, not counted as a turn), and takes --pause seconds (default 3) before each answer,
as a caller listens to the bot and speaks (with 0 it is a stress test: every caller answers at once). A call is signed as Twilio signs it (RequestValidator) and
follows the TwiML's Gather actions: the right-party check, the date of birth, the reason, a plan, and "yes" to the
read-back. A promise is made when the customer says yes to a read-back, whatever the bot answers.
At the end it prints the errors (HTTP errors, timeouts and apologies, by the turn they answered), the turn
latency (p50, p95, p99), turns per second, and the promises recorded (read back through the REST API) against
the promises made: they must be equal.

Run: .venv-app/bin/python bench/soak.py [--minutes 5] [--calls 50] [--profile production] (make soak)."""
import argparse
import asyncio
import itertools
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psycopg  # noqa: E402
from twilio.request_validator import RequestValidator  # noqa: E402

from kindly.texts import all_texts, variant  # noqa: E402
from scripts import services  # noqa: E402

AUTH_TOKEN, ADMIN_KEY = "soak-twilio-token", "soak-admin-key"
OUR_NUMBER = "+15005550006"
SCRIPT = ["yes this is alex speaking", "march fifth 1985", "i just forgot", "i'll pay the whole thing tomorrow", "yes"]
VALIDATOR = RequestValidator(AUTH_TOKEN)


def patterns(prefix: str) -> re.Pattern:
    """What the bot says on an inbound call for the texts whose keys start with `prefix`, placeholders as wildcards."""
    texts = [variant(entry, "voice", "inbound")["en"] for key, entry in all_texts().items() if key.startswith(prefix)]
    return re.compile("|".join(re.sub(r"\\\{\w+\\\}", ".+?", re.escape(text)) for text in texts))


READ_BACK, APOLOGY = patterns("readback_"), patterns("failure_apology")


@dataclass
class Tally:
    latencies: list = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    calls: int = 0
    promises_made: int = 0
    ended_early: Counter = field(default_factory=Counter)  # calls that never reached a read-back, by the bot's last words
    accounts: list = field(default_factory=list)


def spoken(twiml: str) -> str:
    return " ".join(say.text or "" for say in ET.fromstring(twiml).iter("Say"))


def gather_action(twiml: str) -> str:
    gather = ET.fromstring(twiml).find("Gather")
    return gather.get("action") if gather is not None else ""


async def turn(client: httpx.AsyncClient, url: str, params: dict, tally: Tally) -> str:
    """One webhook request; the TwiML, or "" after an error (counted with what the customer had said)."""
    said = repr(params.get("SpeechResult", "(the call is answered)"))
    headers = {"X-Twilio-Signature": VALIDATOR.compute_signature(url, params)}
    started = time.perf_counter()
    try:
        response = await client.post(url, data=params, headers=headers)
    except httpx.HTTPError as error:
        tally.errors[f"{type(error).__name__} after {said}"] += 1
        return ""
    tally.latencies.append(time.perf_counter() - started)
    if response.status_code != 200:
        tally.errors[f"HTTP {response.status_code} after {said}"] += 1
        return ""
    if APOLOGY.search(spoken(response.text)):
        tally.errors[f"apology after {said}"] += 1
        return ""
    return response.text


async def one_call(client: httpx.AsyncClient, gateway: str, phone: str, tally: Tally, pause: float) -> None:
    tally.calls += 1
    params = {"CallSid": "CA" + uuid.uuid4().hex, "AccountSid": "AC" + "5" * 32, "From": phone, "To": OUR_NUMBER,
              "Direction": "inbound", "CallStatus": "in-progress"}
    twiml = await turn(client, f"{gateway}/twilio/voice", params, tally)
    for line in SCRIPT:
        action = gather_action(twiml) if twiml else ""
        if not action:
            if twiml:
                tally.ended_early[spoken(twiml)[-80:]] += 1
            return
        await asyncio.sleep(pause)
        if line == "yes" and READ_BACK.search(spoken(twiml)):
            tally.promises_made += 1
            await turn(client, action, {**params, "SpeechResult": line, "Confidence": "0.9"}, tally)
            return
        twiml = await turn(client, action, {**params, "SpeechResult": line, "Confidence": "0.9"}, tally)
    tally.ended_early[spoken(twiml)[-80:] if twiml else "(error)"] += 1


async def new_account(api: httpx.AsyncClient, phone: str) -> int:
    """A new customer's account, through the REST API."""
    response = await api.post("/api/accounts", json=dict(
        external_id=f"SOAK-{uuid.uuid4().hex[:12]}", name="Alex Morgan", phone=phone, language="en",
        timezone="America/New_York", country="US", currency="USD", balance="1000.00", minimum_due="50.00",
        days_past_due=12, due_date=(date.today() - timedelta(days=12)).isoformat(), card_last4="4242",
        date_of_birth="1985-03-05",
    ))
    response.raise_for_status()
    return response.json()["id"]


_numbers = itertools.count()  # one phone number per account, across the warm-up and the soak


async def soak(gateway: str, callers: int, seconds: float, tally: Tally, pause: float) -> float:
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=callers + 10)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client, \
            httpx.AsyncClient(base_url=gateway, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=60) as api:

        async def caller() -> None:
            while True:
                n = next(_numbers)
                phone = f"+1415{200 + n // 10_000}{n % 10_000:04d}"
                try:
                    tally.accounts.append(await new_account(api, phone))
                except httpx.HTTPError as error:
                    tally.errors[f"account not created ({type(error).__name__})"] += 1
                    continue
                await one_call(client, gateway, phone, tally, pause)
                if time.monotonic() >= deadline:
                    return

        started = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(callers)))
        return time.perf_counter() - started


async def promises_recorded(gateway: str, accounts: list[int]) -> int:
    async with httpx.AsyncClient(base_url=gateway, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=60) as api:
        gate = asyncio.Semaphore(10)

        async def count(account_id: int) -> int:
            async with gate:
                response = await api.get("/api/promises", params={"account_id": account_id})
                response.raise_for_status()
                return len(response.json())

        return sum(await asyncio.gather(*(count(a) for a in accounts)))


def start_stack(args, tmp: Path, database_url: str) -> tuple[subprocess.Popen, str]:
    base = args.port_base
    gateway = f"http://127.0.0.1:{base}"
    env = services.base_env(
        KINDLY_PROFILE=args.profile, DATABASE_URL=database_url, ENGINE_INSTANCES=str(args.engines),
        GATEWAY_WORKERS=str(args.workers), RASA_PORT=str(base + 5), ACTION_PORT=str(base + 55), GATEWAY_PORT=str(base),
        SIMULATOR_PORT=str(base + 1), PUBLIC_BASE_URL=gateway, KINDLY_LOG_DIR=str(tmp / "logs"),
        TWILIO_AUTH_TOKEN=AUTH_TOKEN, ADMIN_API_KEY=ADMIN_KEY, KINDLY_ENV="bench",
        KINDLY_BROKER_URL=f"sqla+sqlite:///{tmp / 'broker.db'}",  # its own task queue, not var/'s
    )
    env.pop("TWILIO_ACCOUNT_SID", None)  # the bundled simulator plays Twilio's REST API (the confirmation SMS)
    for port in (base, base + 1, base + 55, *(base + 5 + i for i in range(args.engines))):
        if services.is_up(f"http://127.0.0.1:{port}/"):
            sys.exit(f"port {port} is taken; choose another --port-base")
    run = subprocess.Popen([str(services.APP_BIN / "python"), "-m", "scripts.run"], cwd=ROOT, env=env,
                           stdout=(tmp / "run.out").open("wb"), stderr=subprocess.STDOUT)
    services.wait_until_up(f"{gateway}/health", run, timeout=600)
    for i in range(args.engines):
        services.wait_until_up(f"http://127.0.0.1:{base + 5 + i}/", run, timeout=600)
    return run, gateway


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--calls", type=int, default=50, help="concurrent calls")
    parser.add_argument("--pause", type=float, default=3.0, help="seconds each caller takes before answering")
    parser.add_argument("--profile", choices=("local", "production"), default="local")
    parser.add_argument("--engines", type=int, help="engine instances (default: 1 local, 2 production)")
    parser.add_argument("--workers", type=int, help="gateway workers (default: 1 local, 2 production)")
    parser.add_argument("--postgres", default=os.environ.get("KINDLY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432"),
                        help="the PostgreSQL server for --profile production (a throwaway database is made on it)")
    parser.add_argument("--port-base", type=int, default=25000, help="gateway on it, simulator +1, engines +5, actions +55")
    args = parser.parse_args()
    production = args.profile == "production"
    args.engines = args.engines or (2 if production else 1)
    args.workers = args.workers or (2 if production else 1)
    if not services.MODEL.exists():
        sys.exit("no trained model: run `make setup` first")

    tmp = Path(tempfile.mkdtemp(prefix="kindly-soak-"))
    database = f"kindly_soak_{uuid.uuid4().hex[:8]}"
    if production:
        with psycopg.connect(f"{args.postgres}/postgres", autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{database}"')
    database_url = f"{args.postgres}/{database}" if production else f"sqlite:///{tmp / 'soak.db'}"
    print(f"soak: {args.calls} concurrent calls for {args.minutes:g} min, {args.pause:g} s before each answer, {args.profile} profile "
          f"({args.engines} engine(s), {args.workers} gateway worker(s), {database_url.split(':')[0]}); "
          f"starting the stack ...", flush=True)
    run = None
    try:
        run, gateway = start_stack(args, tmp, database_url)
        asyncio.run(soak(gateway, 1, 0, Tally(), 0))  # warm-up: one call
        tally = Tally()
        wall = asyncio.run(soak(gateway, args.calls, args.minutes * 60, tally, args.pause))
        recorded = asyncio.run(promises_recorded(gateway, tally.accounts))
        restarts = (tmp / "run.out").read_text().count("starting it again")
    finally:
        if run is not None:
            run.send_signal(signal.SIGTERM)
            run.wait(timeout=120)
        if production:
            with psycopg.connect(f"{args.postgres}/postgres", autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')

    q = statistics.quantiles(tally.latencies, n=100)
    errors = sum(tally.errors.values())
    print(f"calls {tally.calls} in {wall:.0f} s; turns {len(tally.latencies)}; processes restarted {restarts}")
    print(f"errors {errors}" + (f" ({', '.join(f'{k} {v}' for k, v in tally.errors.most_common())})" if errors else ""))
    print(f"p50 {q[49] * 1000:.0f} ms  p95 {q[94] * 1000:.0f} ms  p99 {q[98] * 1000:.0f} ms  "
          f"turns/s {len(tally.latencies) / wall:.1f}  turns over Twilio's 15 s: {sum(t > 15 for t in tally.latencies)}")
    print(f"promises made {tally.promises_made}, recorded {recorded}: {'equal' if recorded == tally.promises_made else 'NOT EQUAL'}")
    for words, count in tally.ended_early.most_common(3):
        print(f"  {count} call(s) ended before a promise, the bot's last words: ...{words}")
    if recorded == tally.promises_made and not errors:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"logs kept in {tmp}")
    if recorded != tally.promises_made:
        sys.exit(1)


if __name__ == "__main__":
    main()
