"""Whether an automated contact is allowed right now, and the one place that reserves it.

Every sender (the API today, campaigns and reminders later) calls `reserve_contact`: in one transaction, with
the account locked, it checks every rule and writes the attempt as "reserved", so two requests can never both
pass a cap. The sender then asks Twilio and updates the reserved row with the outcome (channels/outbound.py).

The rules, in the order they are checked:
- holds: every account flag in force, an opt-out of the channel, an open handoff, and (for a collection
  contact, not a reminder) an open promise with a part not yet due;
- the window (policy.yml), in every time zone the customer may be in: the account's and each one phonenumbers
  gives for the phone; an unknown zone stands for all the zones of its country;
- the call caps (policy.yml): US 7 call attempts in 7 days and no call within 7 days of a verified
  conversation; CN 6 attempts and 3 connected calls in the customer's local day.

What counts as a call attempt: every outbound call we reserved or placed, whatever became of it (no answer,
busy, voicemail), except a request Twilio refused outright. That one never reached the telephone network, so,
reading Regulation F (12 CFR 1006.14(b)), no call was placed; it is kept with outcome "failed" and no CallSid.
A request that failed in the network is counted: Twilio may have placed the call. Inbound calls are the
customer's contacts, not ours, and are never attempts.
"""
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from importlib.resources import files
from typing import Optional, Union
from zoneinfo import ZoneInfo, available_timezones

import phonenumbers
from phonenumbers import timezone as phone_timezones
from sqlalchemy import and_, bindparam, func, insert, not_, select
from sqlalchemy.orm import Session, joinedload, load_only, make_transient_to_detached

from kindly.db import engine_for
from kindly.models import (
    Account, ContactAttempt, Conversation, Handoff, HandoffMessage, OptOut, Promise, PromiseInstallment, TranscriptTurn,
)
from kindly.policy import Policy, load_policy
from kindly.settings import settings
from kindly.timeline import OPEN_HANDOFF_STATUSES

FLAG_REFUSALS = {
    "wrong_number": "the number is marked as a wrong number",
    "cease": "the customer asked us to cease contact",
    "legal_hold": "the account is on legal hold",
    "dispute": "the account has an open dispute",
    "fraud": "the account has a fraud claim under review",
    "deceased": "the customer is reported deceased",
    "vulnerable": "the customer is marked vulnerable",
}
CHANNELS = ("voice", "sms")
PURPOSES = ("collection", "reminder", "callback", "recontact")
# Outcomes not known yet: the call may still connect, so it counts against the connected-call cap.
IN_FLIGHT = ("reserved", "initiated", "unconfirmed")
UNKNOWN_ZONE = "Etc/Unknown"
CUSTOMER_WROTE_WITHIN = timedelta(hours=1)

# The statements every reservation runs, built once (building one costs more than running it on an index),
# and on the tables (not the mapped classes) where they read a few columns: the ORM adds nothing there but time.
# The account's columns the rules read, with its flags in one statement (not selectin's two), locking the
# account's row alone.
LOCK_ACCOUNT = (
    select(Account).where(Account.id == bindparam("account_id"))
    .options(load_only(Account.id, Account.phone, Account.timezone, Account.country), joinedload(Account.flag_history))
    .with_for_update(of=Account)
)
_opt_outs, _handoffs, _promises, _parts = OptOut.__table__, Handoff.__table__, Promise.__table__, PromiseInstallment.__table__
_attempts, _conversations = ContactAttempt.__table__, Conversation.__table__
OPTED_OUT = select(_opt_outs.c.id).where(
    _opt_outs.c.account_id == bindparam("account_id"), _opt_outs.c.channel == bindparam("channel")).limit(1)
OPEN_HANDOFF = select(_handoffs.c.id).where(
    _handoffs.c.account_id == bindparam("account_id"), _handoffs.c.status.in_(OPEN_HANDOFF_STATUSES)).limit(1)
NEXT_PROMISED_PART = (
    select(func.min(_parts.c.due_date))
    .join(_promises, _promises.c.id == _parts.c.promise_id)
    .where(_promises.c.account_id == bindparam("account_id"), _promises.c.status == "open", _parts.c.due_date >= bindparam("today"))
)
# Every outbound call since a time, except a request Twilio refused outright (no call was placed).
CALL_ATTEMPTS = select(func.count(_attempts.c.id)).where(
    _attempts.c.account_id == bindparam("account_id"), _attempts.c.channel == "voice", _attempts.c.direction == "outbound",
    _attempts.c.at >= bindparam("since"), not_(and_(_attempts.c.outcome == "failed", _attempts.c.external_ref.is_(None))),
)
CONNECTED_CALL_ATTEMPTS = CALL_ATTEMPTS.where(_attempts.c.connected.is_(True) | _attempts.c.outcome.in_(IN_FLIGHT))
RESERVE = insert(_attempts).returning(_attempts.c.id)
VERIFIED_CONVERSATION_SINCE = select(_conversations.c.id).where(
    _conversations.c.account_id == bindparam("account_id"), _conversations.c.verified.is_(True),
    _conversations.c.started_at >= bindparam("since"),
).limit(1)


@dataclass(frozen=True)
class Refusal:
    rule: str
    message: str


def check_contact(
    session: Session, account: Account, channel: str, purpose: str = "collection", now: Optional[datetime] = None,
) -> Optional[Refusal]:
    """None when the contact may go ahead, else the first rule that refuses it. Writes nothing."""
    if channel not in CHANNELS or purpose not in PURPOSES:
        raise ValueError(f"unknown channel {channel!r} or purpose {purpose!r}")
    policy = load_policy()
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return (
        _hold(session, account, channel, purpose, now)
        or _outside_window(policy, account, now)
        or (_call_caps(session, account, policy, now) if channel == "voice" else None)
    )


def reserve_contact(
    account_id: int, channel: str, purpose: str = "collection", now: Optional[datetime] = None, url: Optional[str] = None,
) -> Union[ContactAttempt, Refusal]:
    """Check and reserve in one transaction with the account locked: the attempt is written as "reserved"
    before anyone asks Twilio, so concurrent requests see it. `url` names another database (tests)."""
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    with Session(engine_for(url or settings.database_url), expire_on_commit=False) as session, session.begin():
        account = _lock_account(session, account_id)
        refusal = check_contact(session, account, channel, purpose, now)
        if refusal:
            return refusal
        reserved = dict(account_id=account_id, channel=channel, direction="outbound", purpose=purpose, outcome="reserved",
                        connected=False, external_ref=None, conversation_id=None, at=now)
        attempt_id = session.execute(RESERVE, reserved).scalar_one()
    # The row as a query would have loaded it (detached, every column set), without a unit of work per contact.
    attempt = ContactAttempt(id=attempt_id, **reserved)
    make_transient_to_detached(attempt)
    return attempt


def check_agent_reply(session: Session, account: Account, now: Optional[datetime] = None) -> Optional[Refusal]:
    """An agent's SMS: a person answering, not an automated contact, so no hold or cap applies. The opt-out
    does, and so does the window, unless the customer wrote to us in the last hour."""
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    if opted_out(session, account, "sms"):
        return Refusal("opted_out", "the customer opted out of sms")
    if customer_wrote_since(session, account, now - CUSTOMER_WROTE_WITHIN):
        return None
    return _outside_window(load_policy(), account, now)


def customer_wrote_since(session: Session, account: Account, since: datetime) -> bool:
    to_agent = select(HandoffMessage.id).join(Handoff, Handoff.id == HandoffMessage.handoff_id).where(
        Handoff.account_id == account.id, HandoffMessage.role == "user", HandoffMessage.at >= since,
    )
    to_bot = select(TranscriptTurn.id).join(Conversation, Conversation.id == TranscriptTurn.conversation_id).where(
        Conversation.account_id == account.id, TranscriptTurn.role == "user", TranscriptTurn.at >= since,
    )
    return session.scalar(select(to_agent.exists())) or session.scalar(select(to_bot.exists()))


def _lock_account(session: Session, account_id: int) -> Account:
    if session.get_bind().dialect.name == "sqlite":
        # SQLite locks the whole database: take the write lock now, not at the first INSERT, so two readers
        # can't both pass the checks. pysqlite emits no BEGIN of its own before a SELECT, so this one holds.
        session.connection().exec_driver_sql("BEGIN IMMEDIATE")
    account = session.scalars(LOCK_ACCOUNT, {"account_id": account_id}).unique().first()  # PostgreSQL: SELECT ... FOR UPDATE
    if account is None:
        raise LookupError(f"account {account_id} not found")
    return account


# ---------------------------------------------------------------------------------------------------- holds

def _hold(session: Session, account: Account, channel: str, purpose: str, now: datetime) -> Optional[Refusal]:
    flags = account.flags
    for flag, message in FLAG_REFUSALS.items():
        if flag in flags:
            return Refusal(flag, message)
    if opted_out(session, account, channel):
        return Refusal("opted_out", f"the customer opted out of {channel}")
    # The callback a colleague owes a caller nobody could take is the one contact an open handoff allows.
    if purpose != "callback" and session.scalar(OPEN_HANDOFF, {"account_id": account.id}):
        return Refusal("open_handoff", "the customer's case is with an agent")
    if purpose == "collection":
        next_due = _next_promised_part(session, account, now.astimezone(_home_zone(account)).date())
        if next_due:
            return Refusal("open_promise", f"the customer promised a payment, next part due {next_due.isoformat()}")
    return None


def opted_out(session: Session, account: Account, channel: str) -> bool:
    return session.scalar(OPTED_OUT, {"account_id": account.id, "channel": channel}) is not None


def _next_promised_part(session: Session, account: Account, today: date) -> Optional[date]:
    return session.scalar(NEXT_PROMISED_PART, {"account_id": account.id, "today": today})


# --------------------------------------------------------------------------------------------------- window

def _outside_window(policy: Policy, account: Account, now: datetime) -> Optional[Refusal]:
    start, end = policy.contact_hours(account.country)
    for zone in sorted(contact_zones(account)):
        local = now.astimezone(ZoneInfo(zone))
        if not start <= local.time() < end:
            return Refusal(
                "calling_window",
                f"{local:%H:%M} in {zone} is outside the {account.country} contact window {start:%H:%M}-{end:%H:%M}",
            )
    return None


def contact_zones(account: Account) -> frozenset[str]:
    """Every time zone the customer may be in: the account's and each one phonenumbers gives for the phone.
    An unknown zone (Etc/Unknown, or not a zone at all) stands for every zone of its country."""
    return _contact_zones(account.phone, account.timezone, account.country)


# Asked again at every contact of an account (each step, each retry): parsed once per phone, a few hundred bytes.
@lru_cache(maxsize=2**18)
def _contact_zones(phone: str, home_zone: str, country: str) -> frozenset[str]:
    number = _parse_phone(phone)
    region = phonenumbers.region_code_for_number(number) if number else None
    region = region if region in _zones_by_country() else country
    zones = _known_or_country(home_zone, country)
    for zone in phone_timezones.time_zones_for_number(number) if number else (UNKNOWN_ZONE,):
        zones |= _known_or_country(zone, region)
    return frozenset(zones)


def _home_zone(account: Account) -> ZoneInfo:
    return ZoneInfo(account.timezone if account.timezone in _known_zones() else min(contact_zones(account)))


def _known_or_country(zone: str, country: str) -> set[str]:
    return {zone} if zone in _known_zones() else set(_zones_by_country().get(country, ()))


def _parse_phone(phone: str) -> Optional[phonenumbers.PhoneNumber]:
    try:
        return phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return None


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones() - {UNKNOWN_ZONE})


@lru_cache(maxsize=1)
def _zones_by_country() -> dict[str, tuple[str, ...]]:
    """The IANA country-to-zone table (zone1970.tab) as the pinned tzdata package ships it."""
    zones: dict[str, list[str]] = {}
    for line in files("tzdata").joinpath("zoneinfo", "zone1970.tab").read_text().splitlines():
        if line and not line.startswith("#"):
            countries, _coordinates, zone = line.split("\t")[:3]
            for country in countries.split(","):
                zones.setdefault(country, []).append(zone)
    return {country: tuple(names) for country, names in zones.items()}


# ----------------------------------------------------------------------------------------------------- caps

def _call_caps(session: Session, account: Account, policy: Policy, now: datetime) -> Optional[Refusal]:
    caps = policy.contact_caps.get(account.country, policy.contact_caps["US"])
    if account.country == "CN":
        # The customer's local day; with several possible zones, the earliest midnight (the longest day).
        day_start = min(
            now.astimezone(ZoneInfo(zone)).replace(hour=0, minute=0, second=0, microsecond=0) for zone in contact_zones(account)
        ).astimezone(timezone.utc)
        if _call_attempts(session, account, day_start) >= caps["attempts_per_day"]:
            return Refusal("attempt_cap", f"{caps['attempts_per_day']} call attempts already made today")
        if _call_attempts(session, account, day_start, CONNECTED_CALL_ATTEMPTS) >= caps["connected_per_day"]:
            return Refusal("connected_cap", f"{caps['connected_per_day']} connected (or still ringing) calls already made today")
        return None
    if _call_attempts(session, account, now - timedelta(days=7)) >= caps["attempts_per_7_days"]:
        return Refusal("attempt_cap", f"{caps['attempts_per_7_days']} call attempts in the last 7 days")
    quiet_since = now - timedelta(days=caps["quiet_days_after_conversation"])
    if session.scalar(VERIFIED_CONVERSATION_SINCE, {"account_id": account.id, "since": quiet_since}):
        return Refusal("recent_conversation", f"we spoke with the customer in the last {caps['quiet_days_after_conversation']} days")
    return None


def _call_attempts(session: Session, account: Account, since: datetime, counted=CALL_ATTEMPTS) -> int:
    return session.scalar(counted, {"account_id": account.id, "since": since}) or 0
