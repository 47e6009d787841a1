"""Campaigns: a named run over a segment or a filter of the accounts, with a channel plan and a schedule.

A plan is a list of steps, e.g. "sms,voice+24hx2": an opening SMS when the campaign starts, then, for the
accounts it did not reach, a call 24 hours later, retried twice after no answer, busy, a failure or a voicemail.
Each (campaign, account, step) is one row of campaign_contacts, unique, that a worker claims with a
conditional UPDATE before it may contact the account; the contact itself is reserved by the contact policy
(kindly.contact_policy.reserve_contact: flags, opt-outs, holds, the window and the caps, in one locked
transaction). So two workers never contact one account in the same slot, and retries stay inside the caps.

Every Twilio request is paced by one global rate per channel across all workers (calls and texts per second
on the campaign; 1 call a second by default): a one-token bucket kept as "the time the next token is free"
(the GCRA form of a token bucket), in Redis when KINDLY_BROKER_URL is Redis, else in the database.

What the contact policy refuses decides what happens to the step:
- the calling window or a cap: the step waits (for the window's next opening, or 6 hours) and tries again,
  for at most GIVE_UP_AFTER;
- we already spoke with the customer (recent_conversation): the step is done, the customer was reached;
- an opt-out of the channel: this step is refused and the plan goes on with the next step (another channel);
- anything else (a flag, an open handoff, an open promise, a shared phone): the account's run ends.

Shared phones (the importer's merge rule 3): when accounts in different names share a phone, none of them
is contacted automatically (rule "shared_phone", held for a person to review); when they are in one name, only
the one with the most days past due is contacted in a step ("shared_phone_same_person").

Dispatch runs as Celery tasks on the queue (kindly.queue): `start` sends DISPATCH_TASKS dispatch tasks; each
contacts what is due, then schedules itself again for the next due step while the campaign runs.
"""
import os
import re
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Callable, Optional, Union
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, func, insert, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, lazyload

from kindly.contact_policy import Refusal
from kindly.db import get_engine, session_scope
from kindly.importer import same_person_key
from kindly.models import (
    Account, Campaign, CampaignContact, ContactAttempt, Conversation, Promise, RateBucket, TranscriptTurn, as_utc, utcnow,
)
from kindly.policy import load_policy
from kindly.queue import app, broker_url

PLAN_STEP = re.compile(r"^(sms|voice)(?:\+(\d+)h)?(?:x(\d+))?$")
DEFAULT_PLAN = "sms,voice+24hx2"
RETRY_AFTER = timedelta(hours=2)
CAP_WAIT = timedelta(hours=6)
GIVE_UP_AFTER = timedelta(days=3)
# A call whose outcome Twilio has not reported after this long is taken as not answered.
OUTCOME_TIMEOUT = timedelta(hours=1)
OUTCOME_POLL = timedelta(minutes=1)
STALE_CLAIM = timedelta(minutes=10)
SETTLE_EVERY = 50
# A worker reads this many due rows at a time, then claims them one by one (each claim may still lose a race).
CLAIM_BATCH = 50
# A dispatch task works this long, then hands over to its next run (so a pause takes effect within it).
DISPATCH_BUDGET = 50.0
NOT_REACHED = ("no_answer", "busy", "failed", "canceled", "unconfirmed", "voicemail", "completed")
WAITING_RULES = ("calling_window", "attempt_cap", "connected_cap")
DISPATCH_TASKS = int(os.environ.get("KINDLY_DISPATCH_TASKS", "2"))
FILTER_KEYS = {"country", "language", "min_days_past_due", "max_days_past_due", "min_balance", "external_ids"}


class CampaignError(ValueError):
    pass


# The statements a dispatcher runs for every contact, built once (building one costs more than running it), and
# on the tables where they read or write a few columns (the ORM adds nothing there but time).
_campaigns, _rows, _accounts = Campaign.__table__, CampaignContact.__table__, Account.__table__
_attempts, _conversations, _turns = ContactAttempt.__table__, Conversation.__table__, TranscriptTurn.__table__
CAMPAIGN_STATUS = select(_campaigns.c.status).where(_campaigns.c.id == bindparam("campaign_id"))
DUE_ROWS = (
    select(_rows.c.id)
    .where(_rows.c.campaign_id == bindparam("campaign_id"), _rows.c.status == "pending", _rows.c.due_at <= bindparam("now"))
    .order_by(_rows.c.due_at, _rows.c.id).limit(CLAIM_BATCH)
)
# Still pending and still due: another worker may have claimed it, or moved it on, since it was read.
TAKE_ROW = (
    update(_rows)
    .where(_rows.c.id == bindparam("row_id"), _rows.c.status == "pending", _rows.c.due_at <= bindparam("now"))
    .values(status="claimed", claimed_by=bindparam("worker"), updated_at=bindparam("now"))
    .returning(_rows.c.id, _rows.c.campaign_id, _rows.c.account_id, _rows.c.step, _rows.c.channel, _rows.c.tries)
)
SAVE_ROW = update(_rows).where(_rows.c.id == bindparam("row_id"))  # sets the columns it is given
CONTACT_ROW = select(CampaignContact).where(CampaignContact.id == bindparam("row_id"))
# Its flags are the contact policy's business (it reads them under its lock): not loaded here.
ACCOUNT = select(Account).where(Account.id == bindparam("account_id")).options(lazyload(Account.flag_history))
ANSWERED_SINCE = select(_attempts.c.id).where(
    _attempts.c.account_id == bindparam("account_id"), _attempts.c.channel == "voice", _attempts.c.connected.is_(True),
    _attempts.c.at >= bindparam("since"))
SPOKE_SINCE = select(_turns.c.id).join(_conversations, _conversations.c.id == _turns.c.conversation_id).where(
    _conversations.c.account_id == bindparam("account_id"), _turns.c.role == "user", _turns.c.at >= bindparam("since"))
REACHED_SINCE = select(or_(ANSWERED_SINCE.exists(), SPOKE_SINCE.exists()))
_account, _other = _accounts.alias("account"), _accounts.alias("other")
OTHERS_ON_PHONE = (
    select(_other.c.id, _other.c.name, _other.c.days_past_due)
    .join_from(_account, _other, (_other.c.phone == _account.c.phone) & (_other.c.id != _account.c.id))
    .where(_account.c.id == bindparam("account_id"))
)
NEW_ROW = insert(_rows)
STEP_ROW = select(_rows.c.id).where(
    _rows.c.campaign_id == bindparam("campaign_id"), _rows.c.account_id == bindparam("account_id"), _rows.c.step == bindparam("step"))


# ---------------------------------------------------------------------------------------------- plans


def parse_plan(text: str) -> list[dict]:
    """ "sms,voice+24hx2" -> [{channel: sms, after_hours: 0, retries: 0}, {channel: voice, after_hours: 24, retries: 2}]"""
    steps = []
    for part in (text or DEFAULT_PLAN).replace(" ", "").split(","):
        match = PLAN_STEP.match(part)
        if not match:
            raise CampaignError(f"plan step {part!r}: write channel[+Nh][xR], e.g. sms or voice+24hx2")
        steps.append({"channel": match[1], "after_hours": int(match[2] or 0), "retries": int(match[3] or 0)})
    return check_plan(steps)


def check_plan(plan: list[dict]) -> list[dict]:
    if not plan or len(plan) > 10:
        raise CampaignError("a plan has 1 to 10 steps")
    steps = []
    for step in plan:
        if step.get("channel") not in ("sms", "voice"):
            raise CampaignError(f"unknown channel in plan step {step}")
        after, retries = int(step.get("after_hours", 0)), int(step.get("retries", 0))
        if not 0 <= after <= 24 * 30 or not 0 <= retries <= 6:
            raise CampaignError(f"plan step {step}: after_hours 0-720, retries 0-6")
        steps.append({"channel": step["channel"], "after_hours": after, "retries": retries})
    return steps


# ---------------------------------------------------------------------------------------------- lifecycle


def create_campaign(session: Session, name: str, segment: Optional[str] = None, filter: Optional[dict] = None,
                    plan: Optional[list] = None, starts_at: Optional[datetime] = None,
                    calls_per_second: Decimal = Decimal("1"), texts_per_second: Decimal = Decimal("1")) -> Campaign:
    filter = dict(filter or {})
    unknown = set(filter) - FILTER_KEYS
    if unknown:
        raise CampaignError(f"unknown filter keys: {', '.join(sorted(unknown))} (known: {', '.join(sorted(FILTER_KEYS))})")
    if segment not in (None, "early", "late", "flagged"):
        raise CampaignError(f"unknown segment {segment!r}")
    if not (Decimal("0.01") <= Decimal(calls_per_second) <= 100 and Decimal("0.01") <= Decimal(texts_per_second) <= 100):
        raise CampaignError("calls and texts per second: 0.01 to 100")
    if session.scalar(select(Campaign.id).where(Campaign.name == name)):
        raise CampaignError(f"a campaign named {name!r} already exists")
    campaign = Campaign(name=name, segment=segment, filter=filter, plan=check_plan(plan or parse_plan(DEFAULT_PLAN)),
                        starts_at=starts_at, status="draft", calls_per_second=Decimal(calls_per_second),
                        texts_per_second=Decimal(texts_per_second))
    session.add(campaign)
    session.flush()
    return campaign


def audience(campaign: Campaign):
    """The ids of the accounts the campaign is for."""
    query = select(Account.id)
    if campaign.segment:
        query = query.where(Account.segment == campaign.segment)
    f = campaign.filter or {}
    for key, column in (("country", Account.country), ("language", Account.language)):
        if key in f:
            query = query.where(column == f[key])
    if "min_days_past_due" in f:
        query = query.where(Account.days_past_due >= int(f["min_days_past_due"]))
    if "max_days_past_due" in f:
        query = query.where(Account.days_past_due <= int(f["max_days_past_due"]))
    if "min_balance" in f:
        query = query.where(Account.balance >= Decimal(str(f["min_balance"])))
    if "external_ids" in f:
        query = query.where(Account.external_id.in_(list(f["external_ids"])))
    return query


def _campaign_or_error(session: Session, campaign_id: int) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise CampaignError(f"campaign {campaign_id} not found")
    return campaign


def enrol(session: Session, campaign: Campaign, now: datetime) -> int:
    """One first-step row per account of the audience (again: no change for those already in)."""
    first_due = max(now, as_utc(campaign.starts_at) if campaign.starts_at else now)
    enrolled = select(CampaignContact.account_id).where(CampaignContact.campaign_id == campaign.id, CampaignContact.step == 0)
    ids = audience(campaign).where(Account.id.not_in(enrolled))
    result = session.execute(insert(CampaignContact).from_select(
        ["campaign_id", "account_id", "step", "channel", "status", "due_at", "tries", "updated_at"],
        select(literal(campaign.id), ids.subquery().c.id, literal(0), literal(campaign.plan[0]["channel"]),
               literal("pending"), literal(first_due), literal(0), literal(now)),
    ))
    return result.rowcount


def start(campaign_id: int, now: Optional[datetime] = None, dispatch: bool = True) -> Campaign:
    now = now or utcnow()
    with session_scope() as session:
        campaign = _campaign_or_error(session, campaign_id)
        if campaign.status not in ("draft", "done"):
            raise CampaignError(f"campaign {campaign_id} is {campaign.status}: pause or resume it instead")
        enrol(session, campaign, now)
        campaign.status, campaign.started_at, campaign.finished_at = "running", campaign.started_at or now, None
    if dispatch:
        queue_dispatch(campaign_id)
    return campaign


def pause(campaign_id: int) -> Campaign:
    with session_scope() as session:
        campaign = _campaign_or_error(session, campaign_id)
        if campaign.status != "running":
            raise CampaignError(f"campaign {campaign_id} is {campaign.status}, not running")
        campaign.status = "paused"
    return campaign


def resume(campaign_id: int, dispatch: bool = True) -> Campaign:
    with session_scope() as session:
        campaign = _campaign_or_error(session, campaign_id)
        if campaign.status != "paused":
            raise CampaignError(f"campaign {campaign_id} is {campaign.status}, not paused")
        campaign.status = "running"
    if dispatch:
        queue_dispatch(campaign_id)
    return campaign


# ---------------------------------------------------------------------------------------------- pacing


INSERT_IF_MISSING = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


class DatabasePacer:
    """The one-token bucket in the rate_buckets table: each taker moves the next free slot on by 1/rate, in
    a transaction that holds the row (SQLite: the database) so two workers never take the same slot."""

    def __init__(self, clock: Callable[[], float] = time.time):
        self.clock = clock

    def reserve_slot(self, bucket: str, per_second: float) -> float:
        """Seconds to wait before the request may go."""
        engine = get_engine()
        with engine.connect() as connection:
            if engine.dialect.name == "sqlite":
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                connection.begin()
            table = RateBucket.__table__
            # The bucket's first takers all insert it; on PostgreSQL the others wait for the first one's row.
            connection.execute(INSERT_IF_MISSING[engine.dialect.name](table).values(name=bucket, next_slot=0.0)
                               .on_conflict_do_nothing(index_elements=[table.c.name]))
            now = self.clock()
            next_slot = connection.execute(select(table.c.next_slot).where(table.c.name == bucket).with_for_update()).scalar_one()
            slot = max(now, next_slot)
            connection.execute(update(table).where(table.c.name == bucket).values(next_slot=slot + 1 / per_second))
            connection.commit()
        return slot - now


class RedisPacer:
    """The same bucket in Redis, timed by the Redis server's clock so the workers' clocks don't matter."""

    SCRIPT = """
    local t = redis.call('TIME')
    local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
    local slot = math.max(now, tonumber(redis.call('GET', KEYS[1]) or '0'))
    redis.call('SET', KEYS[1], string.format('%.6f', slot + tonumber(ARGV[1])), 'EX', 86400)
    return string.format('%.6f', slot - now)
    """

    def __init__(self, url: str):
        import redis

        self.client = redis.Redis.from_url(url)
        self.script = self.client.register_script(self.SCRIPT)

    def reserve_slot(self, bucket: str, per_second: float) -> float:
        return float(self.script(keys=[f"kindly:pace:{bucket}"], args=[f"{1 / per_second:.6f}"]))


def pacer_for(url: Optional[str] = None) -> Union[DatabasePacer, RedisPacer]:
    url = broker_url() if url is None else url
    return RedisPacer(url) if url.startswith(("redis://", "rediss://")) else DatabasePacer()


# ---------------------------------------------------------------------------------------------- dispatch


def twilio_send(reserved: ContactAttempt) -> ContactAttempt:
    from channels.outbound import place_call, send_opening_sms

    return place_call(reserved) if reserved.channel == "voice" else send_opening_sms(reserved)


def default_reserve(account_id: int, channel: str, now: datetime):
    from kindly.contact_policy import reserve_contact

    return reserve_contact(account_id, channel, "collection", now)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


@dataclass
class Dispatcher:
    """Contacts what is due in one campaign. Everything from outside is a parameter, so the simulation
    (bench/campaign_sim.py) runs the same code in simulated time with Twilio faked."""

    send: Callable[[ContactAttempt], ContactAttempt] = twilio_send
    reserve: Callable = default_reserve
    pacer: Optional[object] = None
    clock: Callable[[], datetime] = utcnow
    sleep: Callable[[float], None] = time.sleep
    worker: str = ""

    def __post_init__(self):
        self.pacer = self.pacer or pacer_for()
        self.worker = self.worker or worker_name()
        self.campaign: Optional[Campaign] = None
        self.due_rows: list[int] = []

    def run(self, campaign_id: int, budget_seconds: Optional[float] = None, max_contacts: Optional[int] = None) -> int:
        """Contact due accounts one at a time until nothing is due, the campaign stops running, or the budget is
        spent; settle what Twilio has answered first, then every SETTLE_EVERY contacts, and whenever nothing
        seems due. Returns the number of contacts placed."""
        started, placed, settled_at = time.monotonic(), 0, None
        # A campaign's plan, rates and start never change once it runs: read once, its status at every contact.
        with session_scope() as session:
            self.campaign, self.due_rows = session.get(Campaign, campaign_id), []
        while budget_seconds is None or time.monotonic() - started < budget_seconds:
            if max_contacts is not None and placed >= max_contacts:
                break
            if settled_at is None or placed - settled_at >= SETTLE_EVERY:
                if not self.settle(campaign_id):
                    break  # the campaign is not running
                settled_at = placed
            row = self.claim(campaign_id)
            if row is None and settled_at != placed:
                if not self.settle(campaign_id):
                    break
                settled_at = placed
                row = self.claim(campaign_id)
            if row is None:
                finish_if_done(campaign_id, self.clock())
                break
            placed += self.contact(row)
        return placed

    def settle(self, campaign_id: int) -> bool:
        """False when the campaign is not running (any more); else settles its answered calls."""
        with session_scope() as session:
            if session.scalar(CAMPAIGN_STATUS, {"campaign_id": campaign_id}) != "running":
                return False
            settle(session, self.campaign, self.clock())
        return True

    def claim(self, campaign_id: int):
        """Take one due row for this worker that is still to be contacted, or None (nothing due, or the campaign is
        not running any more). The rows come from the due rows read last time while any is left, else from the
        next CLAIM_BATCH. The UPDATE only succeeds while the row is still pending and due, so of two workers
        racing for a row exactly one gets it. A taken row whose account an earlier step reached, or whose phone
        is held, is closed in the same transaction and the next one is taken. Returns the row's id, campaign,
        account, step, channel and tries."""
        now = self.clock()
        with session_scope() as session:
            if session.scalar(CAMPAIGN_STATUS, {"campaign_id": campaign_id}) != "running":
                return None
            for fresh in (False, True):
                if fresh:
                    self.due_rows = list(session.scalars(DUE_ROWS, {"campaign_id": campaign_id, "now": now}))
                while self.due_rows:
                    row = session.connection().execute(TAKE_ROW, {"row_id": self.due_rows.pop(0), "worker": self.worker, "now": now}).first()
                    if row is not None and self.still_to_contact(session, row, now):
                        return row
        return None

    def still_to_contact(self, session: Session, row, now: datetime) -> bool:
        """False (and the row closed) when an earlier step reached the account or its phone is held."""
        if row.step > 0 and reached_since(session, row.account_id, self.campaign.started_at):
            close(session.scalars(CONTACT_ROW, {"row_id": row.id}).one(), "skipped", now, "reached by an earlier step")
            return False
        refusal = shared_phone_refusal(session, row)
        if refusal:
            refuse(session, self.campaign, session.scalars(CONTACT_ROW, {"row_id": row.id}).one(), refusal, now)
            return False
        return True

    def contact(self, row) -> int:
        """Reserve the contact with the policy, send it, and record it on the claimed row: 1 when it went."""
        campaign = self.campaign
        per_second = float(campaign.calls_per_second if row.channel == "voice" else campaign.texts_per_second)
        # The slot first, then the policy: the window and the caps are checked at the moment the request goes.
        wait = self.pacer.reserve_slot(f"twilio:{row.channel}", per_second)
        if wait > 0:
            self.sleep(wait)
        reserved = self.reserve(row.account_id, row.channel, self.clock())
        if isinstance(reserved, Refusal):
            with session_scope() as session:
                refuse(session, campaign, session.scalars(CONTACT_ROW, {"row_id": row.id}).one(), reserved, self.clock())
            return 0
        try:
            attempt = self.send(reserved)
        except Exception as error:  # the reserved row already says failed or unconfirmed (channels/outbound.py)
            attempt, detail = reserved, f"Twilio: {error}"[:500]
        else:
            detail = None
        now = self.clock()
        sent = dict(row_id=row.id, status="sent", attempt_id=attempt.id, tries=row.tries + 1, detail=detail, claimed_by=None,
                    due_at=now + OUTCOME_POLL, updated_at=now)
        with get_engine().begin() as connection:
            if row.channel == "sms":  # a text has no later outcome to wait for
                if detail is not None and sent["tries"] <= campaign.plan[row.step]["retries"]:
                    sent.update(status="pending", due_at=now + RETRY_AFTER)
                else:
                    sent.update(status="done", detail="not sent" if detail else "sent")
                    add_next_step(connection, campaign, row.account_id, row.step, now)
            connection.execute(SAVE_ROW, sent)
        return 1


def reached_since(session: Session, account_id: int, since: datetime) -> bool:
    """A person answered one of our calls, or the customer said or wrote something to the bot."""
    return bool(session.scalar(REACHED_SINCE, {"account_id": account_id, "since": since}))


def shared_phone_refusal(session: Session, row) -> Optional[Refusal]:
    """The importer's merge rule 3 for the row's account (row: a CampaignContact or a row with its columns)."""
    others = session.execute(OTHERS_ON_PHONE, {"account_id": row.account_id}).all()
    if not others:
        return None
    account = session.get(Account, row.account_id)
    if any(same_person_key(other.name) != same_person_key(account.name) for other in others):
        return Refusal("shared_phone", "accounts in other names share this phone: held for a person to review")
    in_step = set(session.scalars(select(CampaignContact.account_id).where(
        CampaignContact.campaign_id == row.campaign_id, CampaignContact.step == row.step,
        CampaignContact.account_id.in_([other.id for other in others]))))
    group = [(account.days_past_due, -account.id)] + [(o.days_past_due, -o.id) for o in others if o.id in in_step]
    if max(group) != (account.days_past_due, -account.id):
        return Refusal("shared_phone_same_person", "another account of the same customer on this phone is contacted in this step")
    return None


def refuse(session: Session, campaign: Campaign, row: CampaignContact, refusal: Refusal, now: datetime) -> None:
    row.refusal_rule, row.detail, row.claimed_by = refusal.rule, refusal.message[:500], None
    if refusal.rule in WAITING_RULES:
        wait_until = next_window_opening(session.scalars(ACCOUNT, {"account_id": row.account_id}).one(), now) if refusal.rule == "calling_window" else now + CAP_WAIT
        if wait_until > step_deadline(campaign, row.step):
            close(row, "expired", now, refusal.message)
        else:
            row.status, row.due_at = "pending", wait_until
        return
    if refusal.rule == "recent_conversation":
        close(row, "done", now, "we spoke with the customer recently")
        return
    close(row, "refused", now, refusal.message)
    if refusal.rule == "opted_out":
        next_step(session, campaign, row, now, "opted out of this channel")


def step_deadline(campaign: Campaign, step: int) -> datetime:
    """A step that keeps waiting for the window or the caps gives up GIVE_UP_AFTER after its earliest start."""
    delay = sum(s["after_hours"] for s in campaign.plan[: step + 1])
    return as_utc(campaign.started_at) + timedelta(hours=delay) + GIVE_UP_AFTER


def next_window_opening(account: Account, now: datetime) -> datetime:
    """When the policy's window next opens in the account's time zone (the policy may still find a stricter
    zone for the phone; the step then waits again)."""
    window = load_policy().calling_window.get(account.country, load_policy().calling_window["US"])
    start_h, start_m = map(int, window["start"].split(":"))
    local = now.astimezone(ZoneInfo(account.timezone))
    opening = local.replace(hour=start_h, minute=start_m, second=0, microsecond=0)
    if opening <= local:
        opening += timedelta(days=1)
    return max(opening.astimezone(timezone.utc), now + timedelta(minutes=15))


def close(row: CampaignContact, status: str, now: datetime, detail: str) -> None:
    row.status, row.detail, row.claimed_by, row.updated_at = status, detail[:500], None, now


def next_step(session: Session, campaign: Campaign, row: CampaignContact, now: datetime, why: str) -> None:
    """The step is over without reaching the customer: the plan's next step (if any) comes due after its delay."""
    if row.status not in ("refused",):
        close(row, "done", now, why)
    add_next_step(session, campaign, row.account_id, row.step, now)


def add_next_step(db: Union[Session, Connection], campaign: Campaign, account_id: int, step: int, now: datetime) -> None:
    """The plan's step after `step` (if any), due after its delay, unless the account has it already."""
    if step + 1 >= len(campaign.plan):
        return
    following = campaign.plan[step + 1]
    if not db.scalar(STEP_ROW, {"campaign_id": campaign.id, "account_id": account_id, "step": step + 1}):
        db.execute(NEW_ROW, dict(
            campaign_id=campaign.id, account_id=account_id, step=step + 1, channel=following["channel"], status="pending",
            tries=0, due_at=now + timedelta(hours=following["after_hours"]), updated_at=now))


def settle(session: Session, campaign: Campaign, now: datetime) -> None:
    """Calls whose outcome is known: answered ends the step; no answer, busy, failure or voicemail is retried
    (after RETRY_AFTER, while the step has retries left, through the caps again) or moves on to the next step."""
    rows = session.execute(
        select(CampaignContact, ContactAttempt.outcome, ContactAttempt.connected, ContactAttempt.at)
        .join(ContactAttempt, ContactAttempt.id == CampaignContact.attempt_id)
        .where(CampaignContact.campaign_id == campaign.id, CampaignContact.status == "sent", CampaignContact.channel == "voice",
               CampaignContact.due_at <= now)
        .limit(200)
    ).all()
    # A worker that died between its claim and its request leaves the row claimed: give it back.
    session.execute(update(CampaignContact).where(
        CampaignContact.campaign_id == campaign.id, CampaignContact.status == "claimed",
        CampaignContact.updated_at < now - STALE_CLAIM).values(status="pending", claimed_by=None, updated_at=now))
    for row, outcome, connected, at in rows:
        if connected:
            close(row, "done", now, "answered")
        elif outcome in NOT_REACHED or now - as_utc(at) > OUTCOME_TIMEOUT:
            if row.tries <= campaign.plan[row.step]["retries"]:
                row.status, row.due_at, row.detail = "pending", now + RETRY_AFTER, f"retry after {outcome}"
            else:
                next_step(session, campaign, row, now, f"not reached ({outcome})")
        else:
            row.due_at = now + OUTCOME_POLL


def finish_if_done(campaign_id: int, now: datetime) -> None:
    with session_scope() as session:
        open_row = session.scalar(select(CampaignContact.id).where(
            CampaignContact.campaign_id == campaign_id, CampaignContact.status.in_(("pending", "claimed", "sent"))).limit(1))
        campaign = session.get(Campaign, campaign_id)
        if open_row is None and campaign.status == "running":
            campaign.status, campaign.finished_at = "done", now


def next_due(campaign_id: int) -> Optional[datetime]:
    with session_scope() as session:
        due = session.scalar(select(func.min(CampaignContact.due_at)).where(
            CampaignContact.campaign_id == campaign_id, CampaignContact.status.in_(("pending", "sent"))))
    return as_utc(due) if due else None


# ---------------------------------------------------------------------------------------------- progress


def progress(session: Session, campaign_id: int) -> dict:
    """contacted, reached, right-party, promises and refusals by rule, counted in accounts."""
    campaign = _campaign_or_error(session, campaign_id)
    rows = select(CampaignContact.account_id).where(CampaignContact.campaign_id == campaign_id)
    accounts = rows.distinct().subquery()
    since = campaign.started_at
    enrolled = session.scalar(select(func.count()).select_from(accounts)) or 0
    contacted = session.scalar(select(func.count(func.distinct(CampaignContact.account_id))).where(
        CampaignContact.campaign_id == campaign_id, CampaignContact.attempt_id.is_not(None))) or 0
    reached = right_party = promises = 0
    if since is not None:
        answered = select(ContactAttempt.account_id).where(
            ContactAttempt.channel == "voice", ContactAttempt.connected.is_(True), ContactAttempt.at >= since)
        spoke = select(Conversation.account_id).join(TranscriptTurn, TranscriptTurn.conversation_id == Conversation.id).where(
            TranscriptTurn.role == "user", TranscriptTurn.at >= since)
        reached = session.scalar(select(func.count()).select_from(accounts).where(
            or_(accounts.c.account_id.in_(answered), accounts.c.account_id.in_(spoke)))) or 0
        verified = select(Conversation.account_id).where(Conversation.verified.is_(True), Conversation.started_at >= since)
        right_party = session.scalar(select(func.count()).select_from(accounts).where(accounts.c.account_id.in_(verified))) or 0
        promises = session.scalar(select(func.count(Promise.id)).where(
            Promise.account_id.in_(select(accounts.c.account_id)), Promise.created_at >= since)) or 0
    by_status = dict(session.execute(select(CampaignContact.status, func.count()).where(
        CampaignContact.campaign_id == campaign_id).group_by(CampaignContact.status)).all())
    refusals = dict(session.execute(select(CampaignContact.refusal_rule, func.count()).where(
        CampaignContact.campaign_id == campaign_id, CampaignContact.refusal_rule.is_not(None)).group_by(CampaignContact.refusal_rule)).all())
    attempts = session.scalar(select(func.coalesce(func.sum(CampaignContact.tries), 0)).where(CampaignContact.campaign_id == campaign_id))
    return {
        "id": campaign.id, "name": campaign.name, "status": campaign.status, "segment": campaign.segment,
        "filter": campaign.filter, "plan": campaign.plan, "starts_at": campaign.starts_at, "started_at": campaign.started_at,
        "finished_at": campaign.finished_at, "calls_per_second": str(campaign.calls_per_second),
        "texts_per_second": str(campaign.texts_per_second),
        "progress": {"accounts": enrolled, "contacted": contacted, "attempts": attempts, "reached": reached,
                     "right_party": right_party, "promises": promises, "steps": by_status, "refusals": refusals},
    }


# ---------------------------------------------------------------------------------------------- the queue


def queue_dispatch(campaign_id: int) -> None:
    """Sends DISPATCH_TASKS dispatch tasks, which then keep themselves going while the campaign runs."""
    for _ in range(DISPATCH_TASKS):
        dispatch_task.delay(campaign_id)


@app.task(name="kindly.campaigns.dispatch", bind=True, autoretry_for=(OperationalError,), retry_backoff=True,
          max_retries=10)
def dispatch_task(self, campaign_id: int) -> int:
    """Idempotent: each contact is claimed once (campaign_contacts) and reserved once (the contact policy)."""
    placed = Dispatcher().run(campaign_id, budget_seconds=DISPATCH_BUDGET)
    with session_scope() as session:
        campaign = session.get(Campaign, campaign_id)
        running = campaign is not None and campaign.status == "running"
    due = next_due(campaign_id) if running else None
    if due is not None:
        self.apply_async((campaign_id,), countdown=min(max((due - utcnow()).total_seconds(), 0.0), 60.0))
    return placed


@app.task(name="kindly.import_file", bind=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def import_task(self, import_id: str, path: str) -> str:
    """A big file uploaded to POST /api/imports. Importing again changes nothing already written, so a retry is safe."""
    from pathlib import Path

    from kindly.importer import ImportRefused, run_import

    try:
        run_import(path, import_id=import_id, actor="api")
    except ImportRefused:
        pass  # recorded on the import as failed, with the reason
    Path(path).unlink(missing_ok=True)
    return import_id
