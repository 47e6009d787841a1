"""Follow-through end to end: real Celery workers (on Redis, and on the embedded SQLite transport) run the sweep
and the follow-ups against the real stack, and the simulator shows what went out (GET /sim/messages, /sim/calls).

Time is not waited for: each test sends the sweep an explicit `now` (`sweep.apply_async(kwargs={"now": ...})`),
a moment in the account's local day some days ahead, and the tasks use that moment throughout (the contact
policy, the window, the promise's grace). Promises, claims and callback requests are written with
kindly.records, as the bot's actions write them."""
import json
import subprocess
import time as clock
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from itertools import count
from typing import Callable
from zoneinfo import ZoneInfo

import httpx
import pytest
import redis

from channels import outcomes
from kindly import records
from kindly.db import session_scope
from kindly.follow_through import broken_promise_line
from kindly.models import Account, Conversation
from kindly.plans import single_payment
from kindly.queue import app
from kindly.tasks import sweep
from scripts import services
from tests.conftest import SIMULATOR_URL, ZH_ACCOUNT
from tests.e2e.helpers import Conversation as Talk, new_account
from tests.e2e.twilio_peer import night_phone

NEW_YORK = ZoneInfo("America/New_York")
_cn_phones = count(1)


# ------------------------------------------------------------------------------------------- workers

def start_worker(logs, name: str, broker: str, **env) -> "Worker":
    log = logs / f"worker-{name}.log"
    process = services.start_worker(services.base_env(KINDLY_BROKER_URL=broker, **env), log, concurrency=1, name=f"{name}@%h")
    deadline = clock.monotonic() + 90
    while clock.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the {name} worker exited: {log.read_text()[-2000:]}")
        if log.exists() and " ready." in log.read_text():
            return Worker(broker, process)
        clock.sleep(0.5)
    services.stop(process)
    pytest.fail(f"the {name} worker did not start: {log.read_text()[-2000:] if log.exists() else 'no log'}")


class Worker:
    def __init__(self, broker: str, process):
        self.broker, self.process = broker, process

    def sweep(self, now: datetime) -> None:
        """The beat's task, at a given moment, through this worker's broker."""
        with app.connection_for_write(self.broker) as connection:
            sweep.apply_async(kwargs={"now": now.isoformat()}, connection=connection)


def redis_db(redis_url: str, number: int) -> str:
    """A Redis database of these tests' own (7 and 12; the campaign tests use 8): a worker on a shared one
    would take the other tests' tasks."""
    url = f"{redis_url.rsplit('/', 1)[0]}/{number}"
    redis.Redis.from_url(url).flushdb()  # nothing left over from an earlier run
    return url


@pytest.fixture(scope="module")
def on_redis(stack, redis_url):
    worker = start_worker(stack["logs"], "redis", redis_db(redis_url, 7))
    yield worker
    services.stop(worker.process)


@pytest.fixture(scope="module")
def embedded(stack, tmp_dir):
    worker = start_worker(stack["logs"], "embedded", f"sqla+sqlite:///{tmp_dir / 'celery-broker.db'}")
    yield worker
    services.stop(worker.process)


@pytest.fixture(scope="module")
def twilio_down(stack, redis_url):
    """A worker whose Twilio never answers (nothing listens on the port), retrying twice."""
    worker = start_worker(stack["logs"], "twilio-down", redis_db(redis_url, 12),
                          TWILIO_API_BASE_URL="http://127.0.0.1:9", KINDLY_TASK_MAX_RETRIES="2")
    yield worker
    services.stop(worker.process)


# ------------------------------------------------------------------------------------------- helpers

def local(days: int, hour: int = 15, zone: ZoneInfo = NEW_YORK) -> datetime:
    """`hour` o'clock in the zone, `days` from its today: a daytime moment for accounts there (and on the
    +1 415 phones, three hours behind New York)."""
    return datetime.combine(datetime.now(zone).date() + timedelta(days=days), time(hour), tzinfo=zone)


def today(zone: ZoneInfo = NEW_YORK) -> date:
    return datetime.now(zone).date()


def conversation_for(account_id: int, verified: bool, disposition: str) -> str:
    with session_scope() as session:
        account = session.get(Account, account_id)
        conversation = Conversation(
            account_id=account_id, channel="sms", direction="outbound", language=account.language, verified=verified,
            stage="closed", disposition=disposition,
        )
        session.add(conversation)
        session.flush()
        return conversation.id


def promise(account: dict, amount: str, due: date) -> int:
    """A promise to pay `amount` on `due`, made today in a verified conversation."""
    conversation_id = conversation_for(account["id"], verified=True, disposition="promise_to_pay")
    with session_scope() as session:
        plan = single_payment("partial", Decimal(amount), due)
        record = records.record_promise(session, session.get(Account, account["id"]), session.get(Conversation, conversation_id), plan)
        return record.id


def follow_up(account: dict, kind: str, due_on: date, note: str, verified: bool, disposition: str) -> None:
    conversation_id = conversation_for(account["id"], verified, disposition)
    with session_scope() as session:
        records.create_follow_up(session, session.get(Account, account["id"]), conversation_id, kind, due_on, note)


def follow_ups(api, account: dict, kind: str = None) -> list[dict]:
    params = {"account_id": account["id"], **({"kind": kind} if kind else {})}
    response = api.get("/api/follow-ups", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def settled(api, account: dict, kind: str, done: Callable[[list[dict]], bool] = None, timeout: float = 60) -> list[dict]:
    """The account's follow-ups of a kind, once none is open or running (or `done` says so)."""
    done = done or (lambda rows: rows and all(r["status"] not in ("open", "running") for r in rows))
    deadline = clock.monotonic() + timeout
    while clock.monotonic() < deadline:
        rows = follow_ups(api, account, kind)
        if done(rows):
            return rows
        clock.sleep(0.3)
    pytest.fail(f"the {kind} follow-ups of account {account['id']} did not settle: {rows}")


def texts_to(phone: str) -> list[str]:
    return [m["body"] for m in httpx.get(f"{SIMULATOR_URL}/sim/messages").json() if m["to"] == phone and m["direction"] == "outbound-api"]


def calls_to(phone: str) -> list[dict]:
    return [c for c in httpx.get(f"{SIMULATOR_URL}/sim/calls").json() if c["to"] == phone and c["direction"] == "outbound-api"]


def promise_of(api, account: dict, promise_id: int) -> dict:
    return next(p for p in api.get("/api/promises", params={"account_id": account["id"]}).json() if p["id"] == promise_id)


def pay(api, account: dict, amount: str, paid_on: date, reference: str) -> dict:
    response = api.post("/api/payments", json={"external_id": account["external_id"], "amount": amount,
                                                "paid_on": paid_on.isoformat(), "reference": reference})
    assert response.status_code == 200, response.text
    [result] = response.json()
    return result


def cn_account(api) -> dict:
    return new_account(api, **ZH_ACCOUNT, phone=f"+86139{next(_cn_phones) + 1000 * (clock.time_ns() % 10_000):08d}"[:14])


# ------------------------------------------------------------------------------------------ reminders

def test_reminders_before_the_due_day_and_on_it(api, on_redis):
    account = new_account(api)
    due = today() + timedelta(days=6)
    promise(account, "400.00", due)
    on_redis.sweep(local(3))  # three days before (policy follow_up.reminder_days_before)
    rows = settled(api, account, "reminder", lambda rows: any(r["status"] == "done" for r in rows))
    assert [(r["due_on"], r["status"]) for r in rows] == [((due - timedelta(days=3)).isoformat(), "done"), (due.isoformat(), "open")]
    [text] = texts_to(account["phone"])
    assert "$400.00" in text and "is due on" in text and text.endswith("Reply STOP to opt out.")
    assert not any(word in text.lower() for word in ("call", "speak"))

    on_redis.sweep(local(3))  # again: nothing new
    clock.sleep(3)
    assert len(texts_to(account["phone"])) == 1

    on_redis.sweep(local(6))  # the due day, nothing paid
    rows = settled(api, account, "reminder")
    assert [r["status"] for r in rows] == ["done", "done"]
    assert "due today" in texts_to(account["phone"])[1]


def test_a_chinese_reminder_in_chinese(api, on_redis):
    shanghai = ZoneInfo("Asia/Shanghai")
    account = cn_account(api)
    due = today(shanghai) + timedelta(days=5)
    promise(account, "1200.00", due)
    on_redis.sweep(local(2, hour=10, zone=shanghai))
    settled(api, account, "reminder", lambda rows: any(r["status"] == "done" for r in rows))
    [text] = texts_to(account["phone"])
    assert "海港银行提醒" in text and "1,200.00" in text and text.endswith("回复退订即可退订。")
    assert not any(word in text for word in ("来电", "接听", "听"))


def test_a_reminder_waits_for_the_calling_window(api, on_redis):
    account = new_account(api)
    promise(account, "400.00", today() + timedelta(days=6))
    on_redis.sweep(local(3, hour=6))  # 06:00 in New York, 03:00 on the phone's coast
    clock.sleep(3)
    assert [r["status"] for r in follow_ups(api, account, "reminder")] == ["open", "open"] and texts_to(account["phone"]) == []
    on_redis.sweep(local(3, hour=12))
    settled(api, account, "reminder", lambda rows: any(r["status"] == "done" for r in rows))
    assert len(texts_to(account["phone"])) == 1


# ------------------------------------------------------------------------------------------- payments

def test_paid_in_full_keeps_the_promise_and_no_reminder_goes(api, on_redis):
    account = new_account(api)
    due = today() + timedelta(days=6)
    promise_id = promise(account, "400.00", due)
    result = pay(api, account, "400.00", today() + timedelta(days=1), f"PAY-{account['id']}-1")
    assert result["status"] == "recorded"
    assert pay(api, account, "400.00", today() + timedelta(days=1), f"PAY-{account['id']}-1")["status"] == "duplicate"
    other = pay(api, account, "10.00", today(), f"PAY-{account['id']}-1")
    assert other["status"] == "rejected" and other["field"] == "reference"
    record = promise_of(api, account, promise_id)
    assert record["status"] == "kept" and Decimal(record["paid"]) == Decimal("400.00")
    assert [(p["status"], Decimal(p["paid"])) for p in record["schedule"]] == [("kept", Decimal("400.00"))]
    on_redis.sweep(local(3))
    on_redis.sweep(local(6))
    clock.sleep(3)
    assert follow_ups(api, account, "reminder") == [] and texts_to(account["phone"]) == []


def test_a_partial_payment_then_the_grace_passes(api, on_redis):
    account = new_account(api)
    due = today() + timedelta(days=8)
    promise_id = promise(account, "400.00", due)
    pay(api, account, "150.00", today() + timedelta(days=2), f"PAY-{account['id']}-1")
    record = promise_of(api, account, promise_id)
    assert record["status"] == "open" and record["schedule"][0]["status"] == "open" and Decimal(record["paid"]) == Decimal("150.00")
    on_redis.sweep(local(8 + 3))  # the due date and the two days' grace have passed
    [recontact] = settled(api, account, "recontact")
    assert promise_of(api, account, promise_id)["status"] == "partially_kept"
    assert recontact["status"] == "done" and len(calls_to(account["phone"])) == 1
    with session_scope() as session:
        line = broken_promise_line(session, session.get(Account, account["id"]), "en")
    assert line == f"The $250.00 due on {due:%B} {due.day}, {due.year} hasn't reached us yet."


def test_a_broken_promise_gets_one_recontact_that_opens_a_conversation(api, on_redis):
    account = new_account(api)
    due = today() + timedelta(days=8)
    promise_id = promise(account, "400.00", due)
    on_redis.sweep(local(8 + 2))  # still inside the grace
    clock.sleep(3)
    assert promise_of(api, account, promise_id)["status"] == "open" and follow_ups(api, account, "recontact") == []

    on_redis.sweep(local(8 + 3))
    [recontact] = settled(api, account, "recontact")
    assert recontact["status"] == "done" and promise_of(api, account, promise_id)["status"] == "broken"
    assert promise_of(api, account, promise_id)["schedule"][0]["status"] == "broken"
    [call] = calls_to(account["phone"])
    answered = httpx.post(f"{SIMULATOR_URL}/sim/calls/{call['sid']}/answer", json={"as": "person"}, timeout=60).json()
    assert account["name"] in " ".join(e["text"] for e in answered["events"] if e["verb"] == "Say")
    with session_scope() as session:
        assert "$400.00" in broken_promise_line(session, session.get(Account, account["id"]), "en")
        assert "400.00" in broken_promise_line(session, session.get(Account, account["id"]), "zh")

    on_redis.sweep(local(8 + 4))  # one re-contact, however often the sweep runs
    clock.sleep(3)
    assert len(follow_ups(api, account, "recontact")) == 1 and len(calls_to(account["phone"])) == 1


# ------------------------------------------------------------------------------------- already paid

def already_paid(api, account: dict) -> None:
    """The claim as actions.already_paid records it: a verify_payment follow-up after verify_payment_after_days."""
    follow_up(account, "verify_payment", today() + timedelta(days=3),
              "Customer says already paid; date: not given; method: bank transfer; said: i paid it last week",
              verified=True, disposition="already_paid")


def test_an_already_paid_claim_the_feed_confirms(api, on_redis):
    account = new_account(api)
    already_paid(api, account)
    pay(api, account, "50.00", today() - timedelta(days=5), f"PAY-{account['id']}-1")  # the minimum, after the due date
    on_redis.sweep(local(2))
    clock.sleep(3)
    assert [r["status"] for r in follow_ups(api, account, "verify_payment")] == ["open"]  # not checked before its day
    on_redis.sweep(local(3))
    [claim] = settled(api, account, "verify_payment")
    assert claim["status"] == "done" and api.get("/api/handoffs", params={"account_id": account["id"]}).json() == []


def test_an_already_paid_claim_the_feed_does_not_confirm_goes_to_a_person(api, on_redis):
    account = new_account(api)
    already_paid(api, account)
    pay(api, account, "20.00", today() - timedelta(days=5), f"PAY-{account['id']}-1")  # less than the minimum due
    on_redis.sweep(local(3))
    [claim] = settled(api, account, "verify_payment")
    [handoff] = api.get("/api/handoffs", params={"account_id": account["id"]}).json()
    assert claim["status"] == "done" and handoff["reason"] == "payment_unconfirmed" and handoff["status"] == "waiting"
    assert "already paid" in handoff["summary"]
    agent_texts = [m["body"] for m in httpx.get(f"{SIMULATOR_URL}/sim/messages").json() if m["to"] == "+15005550100"]
    assert any(f"#{handoff['id']} (payment_unconfirmed" in body for body in agent_texts)


# -------------------------------------------------------------------------------------------- callbacks

def test_the_callback_the_customer_asked_for_is_placed_in_the_window(api, on_redis):
    account = new_account(api)
    # "Can't talk now, call me tomorrow", before verification, as actions.callback records it.
    follow_up(account, "callback", today() + timedelta(days=1), "call me tomorrow", verified=False, disposition="callback_requested")
    on_redis.sweep(local(1, hour=7))  # before the window opens on the customer's phone
    clock.sleep(3)
    assert [r["status"] for r in follow_ups(api, account, "callback")] == ["open"] and calls_to(account["phone"]) == []
    on_redis.sweep(local(1, hour=15))
    [callback] = settled(api, account, "callback")
    assert callback["status"] == "done" and len(calls_to(account["phone"])) == 1


@pytest.mark.parametrize("language, said", [("en", "cant talk now, call me back tomorrow at 3pm"), ("zh", "现在不方便，明天下午三点再打给我吧")])
def test_a_callback_asked_for_at_a_time_is_placed_at_that_time(api, on_redis, language, said):
    account = new_account(api) if language == "en" else cn_account(api)
    zone = ZoneInfo(account["timezone"])
    Talk(api, account).start("sms").say(said)
    [callback] = follow_ups(api, account, "callback")
    due = datetime.fromisoformat(callback["due_at"]).replace(tzinfo=timezone.utc).astimezone(zone)  # stored in UTC
    assert (due.date(), due.time()) == (today(zone) + timedelta(days=1), time(15))
    on_redis.sweep(due - timedelta(minutes=10))
    clock.sleep(3)
    assert [r["status"] for r in follow_ups(api, account, "callback")] == ["open"] and calls_to(account["phone"]) == []
    on_redis.sweep(due + timedelta(minutes=1))
    [callback] = settled(api, account, "callback")
    assert callback["status"] == "done" and len(calls_to(account["phone"])) == 1


def ask_for_a_person(account: dict) -> dict:
    call = httpx.post(f"{SIMULATOR_URL}/sim/calls", json={"from": account["phone"], "agent_answers": False}, timeout=60).json()
    return httpx.post(f"{SIMULATOR_URL}/sim/calls/{call['sid']}/input",
                      json={"speech": "put me through to an actual person", "agent_answers": False}, timeout=60).json()


def test_no_agent_line_means_a_callback_not_an_unserved_queue(api, on_redis):
    number = api.get("/api/numbers").json()
    ours = next((n for n in number if n["number"] == "+15005550006"), None)
    assert api.put("/api/numbers/+15005550006", json={"agent_line": None}).status_code == 200
    try:
        account = new_account(api)
        call = ask_for_a_person(account)
    finally:
        restored = {k: v for k, v in (ours or {"agent_line": "+15005550100"}).items() if k != "number"}
        api.put("/api/numbers/+15005550006", json=restored)
    verbs = [e["verb"] for e in call["events"]]
    assert "Enqueue" not in verbs and "Dial" not in verbs and "Hangup" in verbs
    assert "call you back" in " ".join(e["text"] for e in call["events"] if e["verb"] == "Say")
    [callback] = follow_ups(api, account, "callback")
    assert callback["handoff_id"] and callback["status"] == "open" and callback["due_at"]


def test_agent_did_not_answer_so_a_callback_is_scheduled(api, on_redis):
    account = new_account(api)
    call = ask_for_a_person(account)
    assert "Dial" in [e["verb"] for e in call["events"]] and call["status"] == "completed"
    [callback] = follow_ups(api, account, "callback")
    [handoff] = api.get("/api/handoffs", params={"account_id": account["id"]}).json()
    assert callback["handoff_id"] == handoff["id"] and callback["status"] == "open" and handoff["status"] == "waiting"


def test_a_colleague_calls_back_when_the_agent_did_not_answer(api, on_redis):
    account = new_account(api)
    ask_for_a_person(account)
    on_redis.sweep(local(1, hour=15))
    [callback] = settled(api, account, "callback")
    assert callback["status"] == "done", callback
    [callback_call] = calls_to(account["phone"])
    answered = httpx.post(f"{SIMULATOR_URL}/sim/calls/{callback_call['sid']}/answer",
                          json={"as": "person", "agent_answers": True}, timeout=60).json()
    verbs = [e["verb"] for e in answered["events"]]
    assert "Dial" in verbs and "Whisper" in verbs
    assert "calling back as promised" in " ".join(e["text"] for e in answered["events"] if e["verb"] == "Say")
    [handoff] = api.get("/api/handoffs", params={"account_id": account["id"]}).json()
    assert handoff["status"] == "claimed"  # the colleague took the call


# ---------------------------------------------------------------------------- the embedded transport

# ------------------------------------------------------------------------------------------ agent replies

def night_handoff(api) -> tuple[dict, int]:
    """An account where it is night now, whose customer has not written, with a handoff waiting for an agent."""
    phone, zone = night_phone()
    account = new_account(api, phone=phone, timezone=zone)
    conversation_id = conversation_for(account["id"], verified=True, disposition="handoff")
    with session_scope() as session:
        handoff = records.create_handoff(session, session.get(Account, account["id"]), session.get(Conversation, conversation_id),
                                         "human_requested", "")
        session.flush()
        return account, handoff.id


def test_an_agent_reply_at_night_is_held_and_sent_when_the_window_opens(api, on_redis):
    account, handoff_id = night_handoff(api)
    text = "Hi, this is Dana from the bank. I can help with the plan when you're free."
    held = api.post(f"/api/handoffs/{handoff_id}/messages", json={"text": text})
    assert held.status_code == 202, held.text
    [reply] = held.json()["held_replies"]
    sends_at = datetime.fromisoformat(reply["sends_at"].replace("Z", "+00:00"))
    assert reply["text"] == text and held.json()["messages"] == [] and texts_to(account["phone"]) == []
    assert sends_at.astimezone(ZoneInfo(account["timezone"])).time() == time(8)  # the window's opening there
    on_redis.sweep(sends_at - timedelta(minutes=5))
    clock.sleep(3)
    assert [r["status"] for r in follow_ups(api, account, "agent_reply")] == ["open"] and texts_to(account["phone"]) == []
    on_redis.sweep(sends_at + timedelta(minutes=1))
    [row] = settled(api, account, "agent_reply")
    assert row["status"] == "done" and texts_to(account["phone"]) == [text]
    detail = api.get(f"/api/handoffs/{handoff_id}").json()
    assert ([m["text"] for m in detail["messages"]], detail["held_replies"], detail["status"]) == ([text], [], "claimed")


def test_resolving_the_handoff_cancels_a_held_reply(api, on_redis):
    account, handoff_id = night_handoff(api)
    held = api.post(f"/api/handoffs/{handoff_id}/messages", json={"text": "I'll text you in the morning."})
    assert held.status_code == 202, held.text
    sends_at = datetime.fromisoformat(held.json()["held_replies"][0]["sends_at"].replace("Z", "+00:00"))
    resolved = api.post(f"/api/handoffs/{handoff_id}/resolve", json={"disposition": "wrong_number", "note": "not our customer"})
    assert resolved.json()["held_replies"] == []
    [row] = follow_ups(api, account, "agent_reply")
    assert row["status"] == "cancelled" and "resolved" in row["last_error"]
    on_redis.sweep(sends_at + timedelta(minutes=1))
    clock.sleep(3)
    assert texts_to(account["phone"]) == []


# -------------------------------------------------------------------- texts Twilio failed to take at first

def test_texts_twilio_refused_at_first_are_sent_again_by_the_worker(api, on_redis):
    """A Twilio outage as the call ends: the promise's confirmation and the agent's notice of a handoff are not
    lost (channels/outcomes.py, as the voice channel calls them), but sent again by the worker."""
    account = new_account(api)
    promise_id = promise(account, "250.00", today() + timedelta(days=5))
    conversation_id = promise_of(api, account, promise_id)["conversation_id"]
    with session_scope() as session:
        handoff = records.create_handoff(session, session.get(Account, account["id"]), session.get(Conversation, conversation_id),
                                         "dispute", "")
        session.flush()
        handoff_id = handoff.id
    assert httpx.post(f"{SIMULATOR_URL}/sim/outage", json={"messages": 2}).status_code == 200
    outcomes.text_promise_confirmation(conversation_id)
    outcomes.notify_agent_of_handoff(handoff_id)
    assert texts_to(account["phone"]) == []
    resent = lambda rows: [r for r in rows if r["kind"] in ("confirmation", "agent_notice")]  # noqa: E731
    assert {r["kind"]: r["status"] for r in resent(follow_ups(api, account))} == {"confirmation": "open", "agent_notice": "open"}
    on_redis.sweep(datetime.now(NEW_YORK) + timedelta(minutes=1))
    settled(api, account, None, lambda rows: [r["status"] for r in resent(rows)] == ["done", "done"])
    [confirmation] = texts_to(account["phone"])
    assert "250.00" in confirmation and f"Reference {promise_id}" in confirmation
    notices = [m["body"] for m in httpx.get(f"{SIMULATOR_URL}/sim/messages").json() if f"handoff #{handoff_id} " in m["body"]]
    assert len(notices) == 1


def test_the_embedded_transport_runs_the_same_follow_through(api, embedded):
    account = new_account(api)
    promise_id = promise(account, "400.00", today() + timedelta(days=6))
    embedded.sweep(local(3))
    settled(api, account, "reminder", lambda rows: any(r["status"] == "done" for r in rows))
    assert len(texts_to(account["phone"])) == 1
    pay(api, account, "400.00", today() + timedelta(days=4), f"PAY-{account['id']}-1")
    embedded.sweep(local(6))
    rows = settled(api, account, "reminder")
    assert promise_of(api, account, promise_id)["status"] == "kept"
    assert len(texts_to(account["phone"])) == 1 and [r["status"] for r in rows] == ["done", "done"]


# ------------------------------------------------------------------------------------------- failures

def test_a_follow_up_that_fails_for_good_is_visible(api, twilio_down):
    account = new_account(api)
    promise(account, "400.00", today() + timedelta(days=6))
    twilio_down.sweep(local(3))
    rows = settled(api, account, "reminder", lambda rows: any(r["status"] == "failed" for r in rows))
    [reminder] = [r for r in rows if r["status"] == "failed"]
    assert reminder["attempts"] == 3  # the first try and two retries with backoff
    assert reminder["last_error"].startswith("ConnectionError")
    failed = api.get("/api/follow-ups", params={"status": "failed"}).json()
    assert reminder["id"] in [r["id"] for r in failed]


# ----------------------------------------------------------------------------------- the payments file

def test_payments_file_through_the_cli(api, tmp_path):
    account, other = new_account(api), cn_account(api)
    promise_id = promise(account, "400.00", today() + timedelta(days=6))
    rows = [
        "External ID,amount,paid_on,reference,currency,branch",
        f"{account['external_id']},$250.00,{today():%Y-%m-%d},F-{account['id']}-1,USD,north",
        f"{account['external_id']},150,{today():%Y/%m/%d},F-{account['id']}-2,,north",
        f"{account['external_id']},150,{today():%Y/%m/%d},F-{account['id']}-2,,north",  # the same payment again
        f"{other['external_id']},¥88.00,{today():%Y年%m月%d日},F-{other['id']}-1,CNY,east",
        f"{account['external_id']},abc,{today()},F-{account['id']}-3,USD,north",
        f"NO-SUCH-ACCOUNT,10.00,{today()},F-{account['id']}-4,USD,north",
        f"{account['external_id']},10.00,,F-{account['id']}-5,USD,north",
        f"{account['external_id']},10.00,{today()},F-{account['id']}-6,EUR,north",
        ",,,,,",
    ]
    path = tmp_path / "payments.csv"
    path.write_bytes("\n".join(rows).encode("gb18030"))  # a Chinese bank's file
    result = subprocess.run([str(services.APP_BIN / "python"), "-m", "kindly", "import", "--payments", str(path), "--json"],
                            capture_output=True, text=True, env=services.base_env(), timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["encoding"], report["rows"], report["recorded"], report["duplicates"]) == ("gb18030", 8, 3, 1)
    assert [(r["row"], r["field"]) for r in report["rejected"]] == [(6, "amount"), (7, "external_id"), (8, "paid_on"), (9, "currency")]
    assert promise_of(api, account, promise_id)["status"] == "kept"
    assert [p["reference"] for p in api.get("/api/payments", params={"account_id": other["id"]}).json()] == [f"F-{other['id']}-1"]
    again = subprocess.run([str(services.APP_BIN / "python"), "-m", "kindly", "import", "--payments", str(path), "--json"],
                           capture_output=True, text=True, env=services.base_env(), timeout=120)
    assert json.loads(again.stdout)["recorded"] == 0 and json.loads(again.stdout)["duplicates"] == 4
