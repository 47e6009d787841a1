"""Campaigns (kindly/campaigns.py) on the test database with the real contact policy: plans, the database
token bucket, the dispatcher's steps, retries inside the caps, refusals, shared phones, two dispatchers at
once, and the progress. Twilio is replaced by a recording `send` (the e2e tests use the simulator)."""
import itertools
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from kindly import campaigns
from kindly.campaigns import CampaignError, DatabasePacer, Dispatcher, check_plan, parse_plan
from kindly.db import session_scope
from kindly.models import (
    Account, AccountFlag, Campaign, CampaignContact, ContactAttempt, Conversation, OptOut, Promise, TranscriptTurn,
)

# A Wednesday, 10:00 in Denver (MDT) and 00:00 in Shanghai: US accounts (303 numbers) are inside the window.
MORNING = datetime(2026, 6, 10, 16, 0, tzinfo=timezone.utc)
_numbers = itertools.count(1)


@pytest.mark.parametrize("text, plan", [
    ("sms", [{"channel": "sms", "after_hours": 0, "retries": 0}]),
    ("sms,voice+24hx2", [{"channel": "sms", "after_hours": 0, "retries": 0}, {"channel": "voice", "after_hours": 24, "retries": 2}]),
    (" voice x3 , sms+48h", [{"channel": "voice", "after_hours": 0, "retries": 3}, {"channel": "sms", "after_hours": 48, "retries": 0}]),
    ("", [{"channel": "sms", "after_hours": 0, "retries": 0}, {"channel": "voice", "after_hours": 24, "retries": 2}]),
])
def test_plans_read(text, plan):
    assert parse_plan(text) == plan


@pytest.mark.parametrize("text", ["fax", "sms+2d", "voice+24hx9", "sms,,voice", ",".join(["sms"] * 11)])
def test_plans_refused(text):
    with pytest.raises(CampaignError):
        parse_plan(text)


def test_plan_json_checked():
    assert check_plan([{"channel": "voice"}]) == [{"channel": "voice", "after_hours": 0, "retries": 0}]
    with pytest.raises(CampaignError):
        check_plan([{"channel": "voice", "after_hours": -1}])
    with pytest.raises(CampaignError):
        check_plan([])


def test_database_bucket_spaces_slots_by_the_rate():
    pacer = DatabasePacer(clock=lambda: 1_000_000.0)
    waits = [pacer.reserve_slot("test:fixed-clock", 4.0) for _ in range(5)]
    assert waits == [0.0, 0.25, 0.5, 0.75, 1.0]
    later = DatabasePacer(clock=lambda: 1_000_010.0)
    assert later.reserve_slot("test:fixed-clock", 4.0) == 0.0  # idle time is not banked: no burst after a pause


def test_database_bucket_shared_by_threads():
    pacer = DatabasePacer(clock=lambda: 2_000_000.0)
    waits: list[float] = []

    def take() -> None:
        for _ in range(10):
            waits.append(pacer.reserve_slot("test:threads", 2.0))

    threads = [threading.Thread(target=take) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(waits) == [i / 2 for i in range(30)]  # 30 distinct slots, none taken twice


def test_redis_bucket_spaces_slots_by_the_rate(redis_url):
    from kindly.campaigns import RedisPacer, pacer_for

    url = redis_url.rsplit("/", 1)[0] + "/13"
    pacer = pacer_for(url)
    assert isinstance(pacer, RedisPacer) and isinstance(pacer_for("sqla+sqlite:///x.db"), DatabasePacer)
    pacer.client.delete("kindly:pace:test:redis")
    waits = [pacer.reserve_slot("test:redis", 5.0) for _ in range(6)]
    # The i-th taker waits i/5 s, less the moments Redis's own clock moved on between the calls (well under 50 ms).
    assert waits[0] == 0.0
    assert all(0.2 * i - 0.05 <= wait <= 0.2 * i for i, wait in enumerate(waits)), waits


# ------------------------------------------------------------------------------------------ the dispatcher


def new_account(tag: str, name: str = "Alex Morgan", phone: str = "", country: str = "US", days: int = 12, **fields) -> int:
    n = next(_numbers)
    with session_scope() as session:
        account = Account(
            external_id=f"{tag}-{n}", name=name, phone=phone or f"+1303555{n:04d}", language="en" if country == "US" else "zh",
            timezone="America/Denver" if country == "US" else "Asia/Shanghai", country=country,
            currency="USD" if country == "US" else "CNY", balance=Decimal("500.00"), minimum_due=Decimal("25.00"),
            days_past_due=days, due_date=MORNING.date() - timedelta(days=days), card_last4="4242", dob_hmac="not-used",
            segment="early", **fields)
        session.add(account)
        session.flush()
        return account.id


@dataclass
class FakeTwilio:
    """Stands in for channels.outbound: settles the reserved attempt the way Twilio's answer would."""

    outcomes: dict = field(default_factory=dict)  # account id -> list of voice outcomes, in order
    sent: list = field(default_factory=list)  # (account id, channel)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, reserved: ContactAttempt) -> ContactAttempt:
        with self.lock:
            self.sent.append((reserved.account_id, reserved.channel))
            outcome = self.outcomes.get(reserved.account_id, ["no_answer"]).pop(0) if reserved.channel == "voice" else "sent"
        with session_scope() as session:
            attempt = session.get(ContactAttempt, reserved.id)
            attempt.external_ref = f"SID{reserved.id}"
            attempt.outcome, attempt.connected = outcome, outcome in ("answered", "sent")
            session.flush()
            return attempt


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def campaign_for(ids: list[int], plan: str = "sms,voice+24hx2", name: str = "") -> int:
    with session_scope() as session:
        external_ids = list(session.scalars(select(Account.external_id).where(Account.id.in_(ids))))
        campaign = campaigns.create_campaign(session, name or f"test-{next(_numbers)}", filter={"external_ids": external_ids},
                                             plan=parse_plan(plan), calls_per_second=Decimal("100"), texts_per_second=Decimal("100"))
        return campaign.id


def dispatcher(twilio: FakeTwilio, clock: Clock, worker: str = "w1") -> Dispatcher:
    return Dispatcher(send=twilio, pacer=DatabasePacer(), clock=clock, sleep=lambda s: None, worker=worker)


def rows_of(campaign_id: int) -> dict[tuple[int, int], CampaignContact]:
    with session_scope() as session:
        return {(r.account_id, r.step): r for r in session.scalars(select(CampaignContact).where(CampaignContact.campaign_id == campaign_id))}


def progress(campaign_id: int) -> dict:
    with session_scope() as session:
        return campaigns.progress(session, campaign_id)["progress"]


def test_sms_first_then_a_call_next_day_for_those_not_reached():
    a, b = new_account("PLAN"), new_account("PLAN")
    campaign_id = campaign_for([a, b])
    clock, twilio = Clock(MORNING), FakeTwilio(outcomes={a: ["answered"]})
    campaigns.start(campaign_id, now=clock(), dispatch=False)
    assert dispatcher(twilio, clock).run(campaign_id) == 2
    assert sorted(twilio.sent) == sorted([(a, "sms"), (b, "sms")])
    rows = rows_of(campaign_id)
    assert rows[(a, 1)].due_at.replace(tzinfo=timezone.utc) == MORNING + timedelta(hours=24)
    # b replies to the text: reached, so the call step skips b
    with session_scope() as session:  # ... passes verification and promises
        conversation = Conversation(account_id=b, channel="sms", direction="outbound", language="en", verified=True,
                                    started_at=MORNING + timedelta(minutes=30))
        session.add(conversation)
        session.flush()
        session.add(TranscriptTurn(conversation_id=conversation.id, role="user", text="who is this?", at=MORNING + timedelta(hours=1)))
        session.add(Promise(account_id=b, conversation_id=conversation.id, amount=Decimal("25.00"), currency="USD",
                            due_date=MORNING.date() + timedelta(days=7), plan_type="partial", installments=1,
                            total=Decimal("25.00"), created_at=MORNING + timedelta(hours=1)))
    clock.now = MORNING + timedelta(hours=24)
    assert dispatcher(twilio, clock).run(campaign_id) == 1
    assert twilio.sent[-1] == (a, "voice")
    clock.now += timedelta(minutes=2)
    dispatcher(twilio, clock).run(campaign_id)
    rows = rows_of(campaign_id)
    assert (rows[(a, 1)].status, rows[(a, 1)].detail) == ("done", "answered")
    assert rows[(b, 1)].status == "skipped"
    with session_scope() as session:
        assert session.get(Campaign, campaign_id).status == "done"
    result = progress(campaign_id)
    assert (result["accounts"], result["contacted"], result["attempts"], result["reached"], result["right_party"],
            result["promises"]) == (2, 2, 3, 2, 1, 1)


def test_no_answer_is_retried_within_the_plan_and_voicemail_counts():
    a = new_account("RETRY")
    campaign_id = campaign_for([a], plan="voicex2")
    clock, twilio = Clock(MORNING), FakeTwilio(outcomes={a: ["no_answer", "voicemail", "busy", "answered"]})
    campaigns.start(campaign_id, now=clock(), dispatch=False)
    for _ in range(6):
        dispatcher(twilio, clock).run(campaign_id)
        clock.now += campaigns.RETRY_AFTER
    assert twilio.sent == [(a, "voice")] * 3  # the first try and two retries; the fourth outcome is never asked for
    with session_scope() as session:
        outcomes = list(session.scalars(select(ContactAttempt.outcome).where(ContactAttempt.account_id == a).order_by(ContactAttempt.id)))
    assert outcomes == ["no_answer", "voicemail", "busy"]
    row = rows_of(campaign_id)[(a, 0)]
    assert (row.status, row.tries, row.detail) == ("done", 3, "not reached (busy)")


def test_retries_stop_at_the_call_cap():
    a = new_account("CAP")
    with session_scope() as session:  # five calls already this week (voicemail counts as an attempt)
        for day in range(1, 6):
            session.add(ContactAttempt(account_id=a, channel="voice", direction="outbound", external_ref=f"CAP{a}-{day}",
                                       outcome="voicemail" if day == 1 else "no_answer", at=MORNING - timedelta(days=day)))
    campaign_id = campaign_for([a], plan="voicex5")
    clock, twilio = Clock(MORNING), FakeTwilio(outcomes={a: ["no_answer"] * 6})
    campaigns.start(campaign_id, now=clock(), dispatch=False)
    for _ in range(5):  # 10:00 to 18:00 in Denver: a try every other run (the retry waits 2 hours)
        dispatcher(twilio, clock).run(campaign_id)
        clock.now += campaigns.RETRY_AFTER
    assert len(twilio.sent) == 2  # 7 in 7 days: the policy refuses the third try of this campaign
    row = rows_of(campaign_id)[(a, 0)]
    assert (row.status, row.refusal_rule) == ("pending", "attempt_cap")  # waits for the cap to free up, or gives up
    assert progress(campaign_id)["refusals"] == {"attempt_cap": 1}


def test_refusals_by_rule():
    flagged, opted_out, promised, fine = (new_account("REFUSE") for _ in range(4))
    with session_scope() as session:
        session.add(AccountFlag(account_id=flagged, flag="fraud", set_by="agent:test", set_reason="claim"))
        session.add(OptOut(account_id=opted_out, channel="sms", at=MORNING - timedelta(days=1)))
        conversation = Conversation(account_id=promised, channel="sms", direction="outbound", language="en", verified=True,
                                    started_at=MORNING - timedelta(days=20))
        session.add(conversation)
        session.flush()
        promise = Promise(account_id=promised, conversation_id=conversation.id, amount=Decimal("25.00"), currency="USD",
                          due_date=MORNING.date() + timedelta(days=5), plan_type="partial", installments=1, total=Decimal("25.00"))
        session.add(promise)
        session.flush()
        from kindly.models import PromiseInstallment
        session.add(PromiseInstallment(promise_id=promise.id, seq=1, due_date=MORNING.date() + timedelta(days=5), amount=Decimal("25.00")))
    campaign_id = campaign_for([flagged, opted_out, promised, fine], plan="sms,voice+1h")
    clock, twilio = Clock(MORNING), FakeTwilio(outcomes={opted_out: ["answered"], fine: ["no_answer"]})
    campaigns.start(campaign_id, now=clock(), dispatch=False)
    dispatcher(twilio, clock).run(campaign_id)
    clock.now += timedelta(hours=1)
    dispatcher(twilio, clock).run(campaign_id)
    assert sorted(twilio.sent) == sorted([(fine, "sms"), (opted_out, "voice"), (fine, "voice")])  # SMS opt-out: the call still goes
    rows = rows_of(campaign_id)
    assert (rows[(flagged, 0)].status, rows[(flagged, 0)].refusal_rule) == ("refused", "fraud")
    assert (flagged, 1) not in rows  # a flag ends the account's run
    assert (rows[(promised, 0)].status, rows[(promised, 0)].refusal_rule) == ("refused", "open_promise")
    assert progress(campaign_id)["refusals"] == {"fraud": 1, "opted_out": 1, "open_promise": 1}


def test_outside_the_window_the_step_waits_for_the_morning():
    a = new_account("WINDOW")
    campaign_id = campaign_for([a], plan="sms")
    night = datetime(2026, 6, 10, 5, 0, tzinfo=timezone.utc)  # 23:00 in Denver
    clock, twilio = Clock(night), FakeTwilio()
    campaigns.start(campaign_id, now=night, dispatch=False)
    dispatcher(twilio, clock).run(campaign_id)
    row = rows_of(campaign_id)[(a, 0)]
    assert (row.status, row.refusal_rule, twilio.sent) == ("pending", "calling_window", [])
    assert row.due_at.replace(tzinfo=timezone.utc) == datetime(2026, 6, 10, 14, 0, tzinfo=timezone.utc)  # 08:00 MDT
    clock.now = datetime(2026, 6, 10, 14, 0, tzinfo=timezone.utc)
    dispatcher(twilio, clock).run(campaign_id)
    assert twilio.sent == [(a, "sms")]


def test_shared_phones():
    phone_a, phone_b = f"+1303555{next(_numbers):04d}", f"+1303555{next(_numbers):04d}"
    alex = new_account("SHARED", "Alex Morgan", phone_a)
    jordan = new_account("SHARED", "Jordan Morgan", phone_a)
    wang_old = new_account("SHARED", "王芳", phone_b, days=40)
    wang_new = new_account("SHARED", "王 芳", phone_b, days=10)
    campaign_id = campaign_for([alex, jordan, wang_old, wang_new], plan="sms")
    clock, twilio = Clock(MORNING), FakeTwilio()
    campaigns.start(campaign_id, now=clock(), dispatch=False)
    dispatcher(twilio, clock).run(campaign_id)
    assert twilio.sent == [(wang_old, "sms")]  # the same customer's account most past due; the family phone is held
    rows = rows_of(campaign_id)
    assert {rows[(x, 0)].refusal_rule for x in (alex, jordan)} == {"shared_phone"}
    assert rows[(wang_new, 0)].refusal_rule == "shared_phone_same_person"


def test_two_dispatchers_never_contact_one_account_twice():
    ids = [new_account("RACE") for _ in range(30)]
    campaign_id = campaign_for(ids, plan="sms")
    clock, twilio = Clock(MORNING), FakeTwilio()
    campaigns.start(campaign_id, now=clock(), dispatch=False)
    counts: dict[str, int] = {}

    def work(name: str) -> None:
        counts[name] = dispatcher(twilio, clock, worker=name).run(campaign_id)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(account for account, _ in twilio.sent) == sorted(ids)
    assert sum(counts.values()) == 30 and min(counts.values()) > 0, counts
    with session_scope() as session:
        assert session.scalar(select(func.count()).where(ContactAttempt.account_id.in_(ids))) == 30


def test_pause_and_resume():
    ids = [new_account("PAUSE") for _ in range(3)]
    campaign_id = campaign_for(ids, plan="sms")
    clock, twilio = Clock(MORNING), FakeTwilio()
    campaigns.start(campaign_id, now=clock(), dispatch=False)
    assert dispatcher(twilio, clock).run(campaign_id, max_contacts=1) == 1
    campaigns.pause(campaign_id)
    assert dispatcher(twilio, clock).run(campaign_id) == 0
    with pytest.raises(CampaignError):
        campaigns.pause(campaign_id)
    with pytest.raises(CampaignError):
        campaigns.start(campaign_id, dispatch=False)
    campaigns.resume(campaign_id, dispatch=False)
    assert dispatcher(twilio, clock).run(campaign_id) == 2
    assert progress(campaign_id)["steps"] == {"done": 3}


def test_create_checks_its_input():
    with session_scope() as session:
        campaigns.create_campaign(session, "unique-name-check")
    with session_scope() as session:
        with pytest.raises(CampaignError, match="already exists"):
            campaigns.create_campaign(session, "unique-name-check")
        with pytest.raises(CampaignError, match="unknown filter keys: colour"):
            campaigns.create_campaign(session, "bad-filter", filter={"colour": "red"})
        with pytest.raises(CampaignError, match="per second"):
            campaigns.create_campaign(session, "too-fast", calls_per_second=Decimal("500"))


def test_audience_by_segment_and_filter():
    late_cn = new_account("AUDIENCE", country="CN", phone=f"+86138{next(_numbers):08d}", days=50)
    early_us = new_account("AUDIENCE", days=5)
    with session_scope() as session:
        session.get(Account, late_cn).segment = "late"
        campaign = campaigns.create_campaign(session, f"aud-{late_cn}", segment="late", filter={"country": "CN", "min_days_past_due": 45})
        ids = set(session.scalars(campaigns.audience(campaign)))
    assert late_cn in ids and early_us not in ids


def test_a_text_twilio_refuses_is_retried_then_the_plan_moves_on():
    a = new_account("SMSFAIL")
    campaign_id = campaign_for([a], plan="smsx1,voice+1h")
    clock, sent = Clock(MORNING), []

    def refusing_twilio(reserved: ContactAttempt) -> ContactAttempt:
        sent.append(reserved.channel)
        if reserved.channel == "sms":
            raise RuntimeError("Twilio said no")
        return FakeTwilio(outcomes={a: ["answered"]})(reserved)

    campaigns.start(campaign_id, now=clock(), dispatch=False)
    for _ in range(4):
        Dispatcher(send=refusing_twilio, pacer=DatabasePacer(), clock=clock, sleep=lambda s: None, worker="w").run(campaign_id)
        clock.now += campaigns.RETRY_AFTER
    assert sent == ["sms", "sms", "voice"]
    rows = rows_of(campaign_id)
    assert (rows[(a, 0)].status, rows[(a, 0)].detail, rows[(a, 1)].status) == ("done", "not sent", "done")
