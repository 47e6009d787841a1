"""The contact policy on the real database: each rule in each country (US, CN), the daylight-saving days, the
strictest time zone, then the reservation under concurrency on SQLite and on PostgreSQL."""
import os
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import psycopg
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kindly import records
from kindly.accounts import create_account
from kindly.contact_policy import Refusal, check_agent_reply, check_contact, reserve_contact
from kindly.db import engine_for, session_scope
from kindly.migrate import upgrade
from kindly.models import (
    Account, ContactAttempt, Conversation, Handoff, HandoffMessage, OptOut, Promise, PromiseInstallment, TranscriptTurn,
)

SERVER = os.environ.get("KINDLY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
US = dict(country="US", timezone="America/New_York", phone="+12125550123", language="en", currency="USD")
CN = dict(country="CN", timezone="Asia/Shanghai", phone="+8613800138000", language="zh", currency="CNY")
FLAGS = ("dispute", "fraud", "deceased", "vulnerable", "cease", "legal_hold", "wrong_number")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


US_NOON = utc("2026-01-15 17:00")   # 12:00 in New York (EST)
CN_NOON = utc("2026-01-15 04:00")   # 12:00 in Shanghai
CN_MORNING = utc("2026-01-15 01:00")  # 09:00 in Shanghai


def new_account(session: Session, **fields) -> Account:
    values = dict(
        external_id=f"CP-{uuid.uuid4().hex[:12]}", name="Sam Lee", balance=Decimal("1000.00"), minimum_due=Decimal("50.00"),
        days_past_due=12, due_date=date(2026, 1, 1), card_last4="4242", date_of_birth=date(1985, 3, 5), **US,
    )
    values.update(fields)
    return create_account(session, values)


# ----------------------------------------------------------------------------------- what a case sets up

def nothing(session, account, now):
    pass


def calls(count, ago=timedelta(hours=1), outcome="no_answer", direction="outbound", channel="voice", connected=False, sid=True):
    def arrange(session, account, now):
        for _ in range(count):
            session.add(ContactAttempt(
                account_id=account.id, channel=channel, direction=direction, outcome=outcome, connected=connected,
                external_ref=f"CA{uuid.uuid4().hex}" if sid else None, at=now - ago,
            ))
    return arrange


def talk(ago, verified=True, channel="voice", direction="outbound"):
    def arrange(session, account, now):
        _conversation(session, account, now - ago, verified, channel, direction)
    return arrange


def flag(name, cleared=False):
    def arrange(session, account, now):
        records.set_flag(session, account, name, "test", "set by the test")
        if cleared:
            records.clear_flag(session, account, name, "test", "cleared by the test")
    return arrange


def opt_out(channel):
    def arrange(session, account, now):
        session.add(OptOut(account_id=account.id, channel=channel))
    return arrange


def handoff(status):
    def arrange(session, account, now):
        conversation = _conversation(session, account, now - timedelta(days=1))
        session.add(Handoff(account_id=account.id, conversation_id=conversation.id, reason="dispute", channel="sms", status=status, summary=""))
    return arrange


def promise(*parts_due_in_days, status="open"):
    """A promise whose parts fall due so many days from `now`'s date in New York or Shanghai."""
    def arrange(session, account, now):
        conversation = _conversation(session, account, now - timedelta(days=2))
        today = now.astimezone(ZoneInfo(account.timezone)).date()
        dues = [today + timedelta(days=days) for days in parts_due_in_days]
        session.add(Promise(
            account_id=account.id, conversation_id=conversation.id, amount=Decimal("100.00"), currency=account.currency,
            due_date=dues[0], plan_type="installment" if len(dues) > 1 else "partial", installments=len(dues),
            total=Decimal(100 * len(dues)), status=status,
            schedule=[PromiseInstallment(seq=i + 1, due_date=due, amount=Decimal("100.00")) for i, due in enumerate(dues)],
        ))
    return arrange


def both(*arrangers):
    def arrange(session, account, now):
        for one in arrangers:
            one(session, account, now)
            session.flush()
    return arrange


def _conversation(session, account, started_at, verified=False, channel="voice", direction="outbound") -> Conversation:
    conversation = Conversation(
        account_id=account.id, channel=channel, direction=direction, language=account.language, verified=verified,
        started_at=started_at, last_activity_at=started_at,
    )
    session.add(conversation)
    session.flush()
    return conversation


# ------------------------------------------------------------------------------------------------ the table

def case(name, expected, now, account=US, arrange=nothing, channel="voice", purpose="collection"):
    return pytest.param(account, arrange, channel, purpose, now, expected, id=name)


CASES = [
    # The window, US 08:00-21:00 and CN 08:00-22:00 local, both edges.
    case("US 12:00 New York", None, US_NOON),
    case("US 07:59", "calling_window", utc("2026-01-15 12:59")),
    case("US 08:00", None, utc("2026-01-15 13:00")),
    case("US 20:59", None, utc("2026-01-16 01:59")),
    case("US 21:00", "calling_window", utc("2026-01-16 02:00")),
    case("US 21:00 sms too", "calling_window", utc("2026-01-16 02:00"), channel="sms"),
    case("CN 07:59 Shanghai", "calling_window", utc("2026-01-14 23:59"), CN),
    case("CN 08:00", None, utc("2026-01-15 00:00"), CN),
    case("CN 21:59", None, utc("2026-01-15 13:59"), CN),
    case("CN 22:00", "calling_window", utc("2026-01-15 14:00"), CN),
    case("CN 22:00 sms too", "calling_window", utc("2026-01-15 14:00"), CN, channel="sms"),
    # Daylight saving in New York: 8 March 2026 springs forward (EST -5 to EDT -4), 1 November falls back.
    case("DST spring 07:59 EDT", "calling_window", utc("2026-03-08 11:59")),
    case("DST spring 08:00 EDT", None, utc("2026-03-08 12:00")),
    case("DST spring 20:59 EDT", None, utc("2026-03-09 00:59")),
    case("DST spring 21:00 EDT", "calling_window", utc("2026-03-09 01:00")),
    case("DST fall 07:00 EST, 08:00 by the summer offset", "calling_window", utc("2026-11-01 12:00")),
    case("DST fall 07:59 EST", "calling_window", utc("2026-11-01 12:59")),
    case("DST fall 08:00 EST", None, utc("2026-11-01 13:00")),
    case("DST fall 20:59 EST", None, utc("2026-11-02 01:59")),
    case("DST fall 21:00 EST", "calling_window", utc("2026-11-02 02:00")),
    # The strictest zone of the account and the phone.
    case("PR phone 21:38 San Juan, 20:38 New York", "calling_window", utc("2026-01-16 01:38"), {**US, "phone": "+17875550123"}),
    case("PR phone 20:38 San Juan", None, utc("2026-01-16 00:38"), {**US, "phone": "+17875550123"}),
    case("LA account, NY phone, 21:30 New York", "calling_window", utc("2026-01-16 02:30"), {**US, "timezone": "America/Los_Angeles"}),
    case("LA account, NY phone, 08:00 LA", None, utc("2026-01-15 16:00"), {**US, "timezone": "America/Los_Angeles"}),
    # An unknown zone means every zone of the country: Honolulu is the late one in the US, Urumqi in CN.
    case("US unknown zone, 07:00 Honolulu", "calling_window", US_NOON, {**US, "timezone": "Etc/Unknown"}),
    case("US unknown zone, 09:00 Honolulu", None, utc("2026-01-15 19:00"), {**US, "timezone": "Etc/Unknown"}),
    case("US phone with no zone (+800), 07:00 Honolulu", "calling_window", US_NOON, {**US, "phone": "+80012345678"}),
    case("US phone with no zone (+800), 09:00 Honolulu", None, utc("2026-01-15 19:00"), {**US, "phone": "+80012345678"}),
    case("CN unknown zone, 07:00 Urumqi", "calling_window", CN_MORNING, {**CN, "timezone": "Etc/Unknown"}),
    case("CN unknown zone, 08:00 Urumqi", None, utc("2026-01-15 02:00"), {**CN, "timezone": "Etc/Unknown"}),
    # Holds, in each country.
    *[case(f"{country} flag {name}", name, now, account, flag(name))
      for country, account, now in (("US", US, US_NOON), ("CN", CN, CN_NOON)) for name in FLAGS],
    *[case(f"{country} flag {name} cleared", None, now, account, flag(name, cleared=True))
      for country, account, now in (("US", US, US_NOON), ("CN", CN, CN_NOON)) for name in ("cease", "dispute")],
    *[c for country, account, now in (("US", US, US_NOON), ("CN", CN, CN_NOON)) for c in (
        case(f"{country} voice opt-out refuses a call", "opted_out", now, account, opt_out("voice")),
        case(f"{country} sms opt-out refuses an sms", "opted_out", now, account, opt_out("sms"), channel="sms"),
        case(f"{country} sms opt-out allows a call", None, now, account, opt_out("sms")),
        case(f"{country} waiting handoff", "open_handoff", now, account, handoff("waiting")),
        case(f"{country} claimed handoff", "open_handoff", now, account, handoff("claimed")),
        case(f"{country} claimed handoff refuses a reminder", "open_handoff", now, account, handoff("claimed"), purpose="reminder"),
        case(f"{country} waiting handoff allows the colleague's callback", None, now, account, handoff("waiting"), purpose="callback"),
        case(f"{country} resolved handoff", None, now, account, handoff("resolved")),
        case(f"{country} open promise due in 5 days refuses collection", "open_promise", now, account, promise(5)),
        case(f"{country} open promise due in 5 days allows its reminder", None, now, account, promise(5), purpose="reminder"),
        case(f"{country} open promise due today", "open_promise", now, account, promise(0)),
        case(f"{country} open promise past due", None, now, account, promise(-1)),
        case(f"{country} installments, first part past, next part ahead", "open_promise", now, account, promise(-3, 28)),
        case(f"{country} kept promise", None, now, account, promise(5, status="kept")),
    )],
    # US caps: 7 call attempts in 7 days, whatever became of them; none within 7 days of a conversation.
    case("US 6 attempts", None, US_NOON, arrange=calls(6)),
    case("US 7 attempts", "attempt_cap", US_NOON, arrange=calls(7)),
    case("US 7 attempts, reminder too", "attempt_cap", US_NOON, arrange=calls(7), purpose="reminder"),
    case("US 7 attempts, the oldest 7 days ago", None, US_NOON,
         arrange=both(calls(6, ago=timedelta(days=6)), calls(1, ago=timedelta(days=7, minutes=1)))),
    case("US 7 voicemails", "attempt_cap", US_NOON, arrange=calls(7, outcome="voicemail")),
    case("US 7 reserved, not yet placed", "attempt_cap", US_NOON, arrange=calls(7, outcome="reserved", sid=False)),
    case("US 7 network failures", "attempt_cap", US_NOON, arrange=calls(7, outcome="unconfirmed", sid=False)),
    case("US 7 refused by Twilio", None, US_NOON, arrange=calls(7, outcome="failed", sid=False)),
    case("US 7 failed at the carrier", "attempt_cap", US_NOON, arrange=calls(7, outcome="failed")),
    case("US 7 inbound calls", None, US_NOON, arrange=calls(7, direction="inbound", outcome="answered", connected=True)),
    case("US 7 texts", None, US_NOON, arrange=calls(7, channel="sms", outcome="sent")),
    case("US 7 calls do not cap a text", None, US_NOON, arrange=calls(7), channel="sms"),
    case("US verified conversation 6 days ago", "recent_conversation", US_NOON, arrange=talk(timedelta(days=6))),
    case("US verified inbound sms yesterday", "recent_conversation", US_NOON,
         arrange=talk(timedelta(days=1), channel="sms", direction="inbound")),
    case("US verified conversation 8 days ago", None, US_NOON, arrange=talk(timedelta(days=8))),
    case("US unverified conversation yesterday", None, US_NOON, arrange=talk(timedelta(days=1), verified=False)),
    case("US conversation does not stop a text", None, US_NOON, arrange=talk(timedelta(days=1)), channel="sms"),
    # CN caps: 6 attempts and 3 connected calls in the customer's local day (Shanghai).
    case("CN 5 attempts today", None, CN_MORNING, CN, calls(5)),
    case("CN 6 attempts today", "attempt_cap", CN_MORNING, CN, calls(6)),
    case("CN 6 attempts at 00:30 Shanghai (16:30 UTC yesterday)", "attempt_cap", CN_MORNING, CN, calls(6, ago=timedelta(hours=8, minutes=30))),
    case("CN 6 attempts at 23:30 Shanghai yesterday (same UTC day)", None, CN_MORNING, CN, calls(6, ago=timedelta(hours=9, minutes=30))),
    case("CN 6 voicemails", "attempt_cap", CN_MORNING, CN, calls(6, outcome="voicemail")),
    case("CN 6 refused by Twilio", None, CN_MORNING, CN, calls(6, outcome="failed", sid=False)),
    case("CN 6 inbound calls", None, CN_MORNING, CN, calls(6, direction="inbound", outcome="answered", connected=True)),
    case("CN 3 connected", "connected_cap", CN_MORNING, CN, calls(3, outcome="answered", connected=True)),
    case("CN 2 connected, 1 still ringing", "connected_cap", CN_MORNING, CN,
         both(calls(2, outcome="answered", connected=True), calls(1, outcome="initiated"))),
    case("CN 2 connected, 1 no answer", None, CN_MORNING, CN,
         both(calls(2, outcome="answered", connected=True), calls(1, outcome="no_answer"))),
    case("CN 3 connected yesterday", None, CN_MORNING, CN, calls(3, ago=timedelta(hours=10), outcome="answered", connected=True)),
    case("CN has no quiet days after a conversation", None, CN_NOON, CN, talk(timedelta(days=1))),
]


@pytest.mark.parametrize("account_fields, arrange, channel, purpose, now, expected", CASES)
def test_contact_rule(account_fields, arrange, channel, purpose, now, expected):
    with session_scope() as session:
        account = new_account(session, **account_fields)
        arrange(session, account, now)
        session.flush()
        refusal = check_contact(session, account, channel, purpose, now)
        assert (refusal.rule if refusal else None) == expected, refusal


def test_check_writes_nothing_and_reserve_writes_the_attempt():
    with session_scope() as session:
        account_id = new_account(session).id
    with session_scope() as session:
        account = session.get(Account, account_id)
        assert check_contact(session, account, "voice", "reminder", US_NOON) is None
        assert _attempts(session, account_id) == 0
    reserved = reserve_contact(account_id, "voice", "reminder", now=US_NOON)
    assert isinstance(reserved, ContactAttempt)
    assert (reserved.outcome, reserved.purpose, reserved.direction, reserved.external_ref) == ("reserved", "reminder", "outbound", None)
    refused = reserve_contact(account_id, "voice", now=utc("2026-01-16 02:00"))
    assert isinstance(refused, Refusal) and refused.rule == "calling_window"
    with session_scope() as session:
        assert _attempts(session, account_id) == 1


def test_an_unknown_account_cannot_be_reserved():
    with pytest.raises(LookupError):
        reserve_contact(10**9, "voice", now=US_NOON)


# ------------------------------------------------------------------------------------- agent SMS replies

LATE_NY = utc("2026-01-16 04:00")  # 23:00 in New York


def customer_wrote(ago, role="user", where="handoff"):
    def arrange(session, account, now):
        conversation = _conversation(session, account, now - timedelta(hours=3), channel="sms", direction="inbound")
        if where == "handoff":
            ticket = Handoff(account_id=account.id, conversation_id=conversation.id, reason="requested_human", channel="sms", summary="")
            session.add(ticket)
            session.flush()
            session.add(HandoffMessage(handoff_id=ticket.id, role=role, text="hello?", at=now - ago))
        else:
            session.add(TranscriptTurn(conversation_id=conversation.id, role=role, text="hello?", at=now - ago))
    return arrange


@pytest.mark.parametrize("arrange, now, expected", [
    pytest.param(nothing, US_NOON, None, id="in the window"),
    pytest.param(nothing, LATE_NY, "calling_window", id="23:00, nobody wrote"),
    pytest.param(customer_wrote(timedelta(minutes=30)), LATE_NY, None, id="23:00, customer wrote to the agent 30 min ago"),
    pytest.param(customer_wrote(timedelta(minutes=10), where="transcript"), LATE_NY, None, id="23:00, customer wrote to the bot 10 min ago"),
    pytest.param(customer_wrote(timedelta(minutes=61)), LATE_NY, "calling_window", id="23:00, customer wrote 61 min ago"),
    pytest.param(customer_wrote(timedelta(minutes=10), role="agent"), LATE_NY, "calling_window", id="23:00, only the agent wrote"),
    pytest.param(both(customer_wrote(timedelta(minutes=5)), opt_out("sms")), LATE_NY, "opted_out", id="opted out of sms"),
    pytest.param(flag("dispute"), US_NOON, None, id="a flag does not stop the agent"),
])
def test_agent_reply(arrange, now, expected):
    with session_scope() as session:
        account = new_account(session)
        arrange(session, account, now)
        session.flush()
        refusal = check_agent_reply(session, account, now)
        assert (refusal.rule if refusal else None) == expected, refusal


def test_another_customers_words_do_not_open_the_window():
    with session_scope() as session:
        other = new_account(session)
        customer_wrote(timedelta(minutes=5))(session, other, LATE_NY)
        account = new_account(session)
        session.flush()
        assert check_agent_reply(session, account, LATE_NY).rule == "calling_window"


# --------------------------------------------------------------------------------------------- concurrency

def _attempts(session, account_id) -> int:
    return session.scalar(select(func.count(ContactAttempt.id)).where(ContactAttempt.account_id == account_id))


def race(url: str, account_fields: dict, now: datetime, requests: int = 20) -> tuple[list, int]:
    """`requests` threads reserve a call for one account at the same moment; the results and the rows written."""
    engine = engine_for(url)
    with Session(engine) as session, session.begin():
        account_id = new_account(session, **account_fields).id
    start = threading.Barrier(requests)

    def one(_):
        start.wait()
        return reserve_contact(account_id, "voice", now=now, url=url)

    with ThreadPoolExecutor(requests) as pool:
        results = list(pool.map(one, range(requests)))
    with Session(engine) as session:
        return results, _attempts(session, account_id)


def assert_cap_holds(results: list, rows: int, cap: int, rule: str) -> None:
    reserved = [r for r in results if isinstance(r, ContactAttempt)]
    refused = [r for r in results if isinstance(r, Refusal)]
    assert len(reserved) == cap == rows, (len(reserved), rows)
    assert len(refused) == len(results) - cap and {r.rule for r in refused} == {rule}


@pytest.fixture
def sqlite_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'race.db'}"
    upgrade(url)
    yield url
    engine_for(url).dispose()


def test_twenty_simultaneous_calls_on_sqlite_the_us_cap_holds(sqlite_url):
    assert_cap_holds(*race(sqlite_url, US, US_NOON), cap=7, rule="attempt_cap")


def test_twenty_simultaneous_calls_on_sqlite_the_cn_connected_cap_holds_while_they_ring(sqlite_url):
    assert_cap_holds(*race(sqlite_url, CN, CN_NOON), cap=3, rule="connected_cap")


@pytest.fixture
def postgres_url():
    try:
        admin = psycopg.connect(f"{SERVER}/postgres", autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        pytest.skip(f"no PostgreSQL server at {SERVER}: {error}")
    name = f"kindly_test_{uuid.uuid4().hex[:10]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{SERVER}/{name}"
    try:
        upgrade(url)
        yield url
    finally:
        engine_for(url).dispose()
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def test_twenty_simultaneous_calls_on_postgresql_the_us_cap_holds(postgres_url):
    assert_cap_holds(*race(postgres_url, US, US_NOON), cap=7, rule="attempt_cap")


def test_twenty_simultaneous_calls_on_postgresql_the_cn_connected_cap_holds_while_they_ring(postgres_url):
    assert_cap_holds(*race(postgres_url, CN, CN_NOON), cap=3, rule="connected_cap")
