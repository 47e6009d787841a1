"""Turn latency through the whole stack, against the stock `rasa init` bot.

Drives N concurrent simulated calls through /twilio/voice with signed requests (gateway -> engine -> action
server -> database) and prints p50/p95/p99 turn latency and turns per second at concurrency 1, 10 and 50, with one engine
instance and with two (any engine serves any turn: the conversations are in the SQL tracker store, locked in Redis).
In the same run it trains and serves the stock `rasa init` bot (in-memory tracker, as `rasa init` makes it) and
drives its REST webhook the same way, then prints the ratios.
Run: `.venv-app/bin/python bench/turn_latency.py [PORT_BASE]` (make bench); ports PORT_BASE (default 25000) and up."""
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TMP = Path(tempfile.mkdtemp(prefix="kindly-bench-"))
_BASE = int(sys.argv[1]) if len(sys.argv) > 1 else 25000
ENGINE_PORT, ACTION_PORT, GATEWAY_PORT, STOCK_PORT, SIMULATOR_PORT = (_BASE + n for n in (5, 55, 0, 6, 1))
GATEWAY = f"http://127.0.0.1:{GATEWAY_PORT}"
os.environ.update(
    DATABASE_URL=f"sqlite:///{TMP / 'bench.db'}", RASA_URL=f"http://127.0.0.1:{ENGINE_PORT}",
    PUBLIC_BASE_URL=GATEWAY, TWILIO_AUTH_TOKEN="bench-token", KINDLY_ENV="bench", AGENT_LINE="+15005550100",
    TWILIO_API_BASE_URL=f"http://127.0.0.1:{SIMULATOR_PORT}", SIMULATOR_GATEWAY_URL=GATEWAY,
)

import httpx  # noqa: E402
from twilio.request_validator import RequestValidator  # noqa: E402

from kindly.accounts import create_account  # noqa: E402
from kindly.db import session_scope  # noqa: E402
from kindly.migrate import upgrade  # noqa: E402
from scripts import services  # noqa: E402

CONCURRENCY = (1, 10, 50)
CALL_SCRIPT = ["yes speaking", "march 5 1985", "i just forgot", "i'll pay the whole thing tomorrow", "yes"]
STOCK_SCRIPT = ["hello there", "i'm feeling great", "are you a bot?", "goodbye"]
VALIDATOR = RequestValidator("bench-token")


_numbers = iter(range(10_000))


def make_accounts(count: int) -> list[str]:
    phones = []
    with session_scope() as session:
        for _ in range(count):
            phone = f"+1415556{next(_numbers):04d}"
            create_account(session, dict(
                external_id=f"BENCH-{uuid.uuid4().hex[:8]}", name="Alex Morgan", phone=phone, language="en",
                timezone="America/New_York", country="US", currency="USD", balance=Decimal("1000.00"),
                minimum_due=Decimal("50.00"), days_past_due=12, due_date=date.today(), card_last4="4242",
                date_of_birth=date(1985, 3, 5),
            ))
            phones.append(phone)
    return phones


async def signed_post(client: httpx.AsyncClient, url: str, params: dict) -> tuple[float, str]:
    headers = {"X-Twilio-Signature": VALIDATOR.compute_signature(url, params)}
    started = time.perf_counter()
    response = await client.post(url, data=params, headers=headers)
    response.raise_for_status()
    return time.perf_counter() - started, response.text


def gather_action(twiml: str) -> str:
    import xml.etree.ElementTree as ET

    gather = ET.fromstring(twiml).find("Gather")
    return gather.get("action") if gather is not None else ""


async def one_call(client: httpx.AsyncClient, phone: str, latencies: list) -> bool:
    """Whether the call got through the whole script (the bot asked for each next line)."""
    params = {"CallSid": "CA" + uuid.uuid4().hex, "From": phone, "To": "+15005550006", "Direction": "inbound"}
    elapsed, twiml = await signed_post(client, f"{GATEWAY}/twilio/voice", params)
    latencies.append(elapsed)
    for line in CALL_SCRIPT:
        action = gather_action(twiml)
        if not action:
            return False
        elapsed, twiml = await signed_post(client, action, {**params, "SpeechResult": line, "Confidence": "0.9"})
        latencies.append(elapsed)
    return True


async def one_call_warm_up(phone: str) -> None:
    async with httpx.AsyncClient(timeout=120) as client:
        await one_call(client, phone, [])


async def one_stock_chat(client: httpx.AsyncClient, latencies: list) -> bool:
    sender = uuid.uuid4().hex
    for line in STOCK_SCRIPT:
        started = time.perf_counter()
        response = await client.post(f"http://127.0.0.1:{STOCK_PORT}/webhooks/rest/webhook", json={"sender": sender, "message": line})
        response.raise_for_status()
        latencies.append(time.perf_counter() - started)
    return True


async def run_level(concurrency: int, make_session) -> dict:
    """`concurrency` callers at once; at low concurrency each makes several calls in a row, so every level
    measures at least 10 conversations."""
    latencies: list[float] = []
    unfinished = []
    limits = httpx.Limits(max_connections=concurrency + 5)
    rounds = max(1, 10 // concurrency)

    async def caller(client: httpx.AsyncClient, i: int) -> None:
        for _ in range(rounds):
            if not await make_session(client, i, latencies):
                unfinished.append(i)

    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(caller(client, i) for i in range(concurrency)))
        wall = time.perf_counter() - started
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    return {"turns": len(latencies), "p50": q[49] * 1000, "p95": q[94] * 1000, "p99": q[98] * 1000,
            "tps": len(latencies) / wall, "unfinished": len(unfinished)}


def report(name: str, results: dict) -> None:
    for concurrency, r in results.items():
        print(f"{name:<12} c={concurrency:<3} turns={r['turns']:<4} p50={r['p50']:7.1f} ms  p95={r['p95']:7.1f} ms  "
              f"p99={r['p99']:7.1f} ms  turns/s={r['tps']:6.1f}  conversations cut short={r['unfinished']}", flush=True)


def bench_kindly(engine_instances: int) -> dict:
    """The whole stack; with several engines the gateway passes the turns round them (RASA_URL list)."""
    upgrade()
    phones = make_accounts(sum(max(c, 10) for c in CONCURRENCY) + 10)
    engine_ports = [ENGINE_PORT + 100 * i for i in range(engine_instances)]
    env = services.base_env(RASA_URL=services.engine_urls(engine_ports))
    logs = TMP / "logs"
    actions = services.start_action_server(ACTION_PORT, env, logs / "actions.log")
    engines = services.start_engines(engine_ports, ACTION_PORT, env, logs)
    gateway = services.start_gateway(GATEWAY_PORT, env, logs / "gateway.log")
    # The promise confirmation SMS goes to the simulator, as it would go to Twilio.
    simulator = services.start_simulator(SIMULATOR_PORT, env, logs / "simulator.log")
    try:
        services.wait_until_up(f"http://127.0.0.1:{SIMULATOR_PORT}/sim/calls", simulator)
        services.wait_until_up(f"http://127.0.0.1:{ACTION_PORT}/health", actions)
        services.wait_until_up(f"{GATEWAY}/health", gateway)
        services.wait_for_engines(engine_ports, engines)
        results, used = {}, iter(phones)
        asyncio.run(one_call_warm_up(next(used)))
        for concurrency in CONCURRENCY:
            results[concurrency] = asyncio.run(run_level(concurrency, lambda c, i, lat: one_call(c, next(used), lat)))
        return results
    finally:
        services.stop(simulator, gateway, *engines, actions)


def bench_stock() -> dict:
    project = TMP / "stock"
    project.mkdir()
    env = services.base_env()
    print("training the stock `rasa init` bot ...", flush=True)
    subprocess.run([str(services.ENGINE_BIN / "rasa"), "init", "--no-prompt", "--init-dir", str(project)],
                   cwd=TMP, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = subprocess.Popen(
        [str(services.ENGINE_BIN / "rasa"), "run", "-i", "127.0.0.1", "-p", str(STOCK_PORT), "--quiet"],
        cwd=project, env=env, stdout=(TMP / "stock.log").open("wb"), stderr=subprocess.STDOUT,
    )
    try:
        services.wait_until_up(f"http://127.0.0.1:{STOCK_PORT}/", server, timeout=300)
        asyncio.run(run_level(1, lambda c, i, lat: one_stock_chat(c, lat)))
        return {c: asyncio.run(run_level(c, lambda cl, i, lat: one_stock_chat(cl, lat))) for c in CONCURRENCY}
    finally:
        services.stop(server)


def main() -> None:
    if not services.MODEL.exists():
        sys.exit("no trained model: run `make setup` first")
    kindly = {instances: bench_kindly(instances) for instances in (1, 2)}
    for instances, results in kindly.items():
        report(f"kindly x{instances}", results)
    stock = bench_stock()
    report("stock rasa", stock)
    for instances, results in kindly.items():
        for concurrency in CONCURRENCY:
            k, s = results[concurrency], stock[concurrency]
            print(f"ratio kindly x{instances}/stock c={concurrency:<3} p95={k['p95'] / s['p95']:5.2f}x  turns/s={k['tps'] / s['tps']:5.2f}x")


if __name__ == "__main__":
    main()
