"""Follow-through decisions: what the payments make of a promise, when reminders are due, when a follow-up may
run and when to try again after the contact policy says no. Pure and Decimal-only, like kindly/plans.py;
kindly/payments.py and kindly/tasks.py read, write and send. The last two sections are the small reads and
writes the dialogue and the voice channel need: broken_promise_line and schedule_agent_callback.

Promise statuses
- A part's paid amount: the payments made since the promise, laid on the parts in order (earliest first), so
  an early payment counts towards the next part and a late one fills the oldest gap first.
- A part is `kept` once paid in full (on time, early, or late: a late payment still closes it). While its due
  date plus the grace (policy `follow_up.grace_days`) has not passed it stays `open`. After that, short of
  the full amount, it is `broken` with nothing paid and `partially_kept` with something paid.
- The promise is `kept` when every part is kept, `broken` when any part is broken, else `partially_kept` when
  any part is, else `open`.
"""
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Iterable, Optional
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kindly import formatting, records
from kindly.models import Account, FollowUp, Handoff, Promise, PromiseInstallment, as_utc
from kindly.policy import load_policy
from kindly.texts import say

ZERO = Decimal("0")
# Follow-ups that contact the customer, and so wait for the calling window.
CONTACT_KINDS = ("reminder", "callback", "recontact", "agent_reply")
# Promises whose shortfall the re-contact is about.
MISSED = ("broken", "partially_kept")
# Contact-policy refusals that pass with time. Any other (a flag, an opt-out, an open handoff) ends the follow-up.
CAP_RULES = ("attempt_cap", "connected_cap", "recent_conversation")
# When the contact policy refuses a moment our own window arithmetic allows, look again this much later.
RECHECK = timedelta(minutes=15)


@dataclass(frozen=True)
class PartState:
    paid: Decimal
    status: str


# --------------------------------------------------------------------------------------------- promises

def allocate(amounts: list[Decimal], paid_total: Decimal) -> list[Decimal]:
    """The payments laid on the parts in order; an overpayment beyond the last part is not shown on any."""
    left, paid = max(paid_total, ZERO), []
    for amount in amounts:
        take = min(amount, left)
        paid.append(take)
        left -= take
    return paid


def part_status(amount: Decimal, paid: Decimal, due_date: date, today: date, grace_days: int) -> str:
    if paid >= amount:
        return "kept"
    if today <= due_date + timedelta(days=grace_days):
        return "open"
    return "partially_kept" if paid > ZERO else "broken"


def promise_status(part_statuses: list[str]) -> str:
    if all(status == "kept" for status in part_statuses):
        return "kept"
    for status in ("broken", "partially_kept"):
        if status in part_statuses:
            return status
    return "open"


def settle(parts: list[tuple[date, Decimal]], paid_total: Decimal, today: date, grace_days: int) -> tuple[list[PartState], str]:
    """Each part's (due date, amount) and the sum paid since the promise: each part's state, and the promise's."""
    paid = allocate([amount for _, amount in parts], paid_total)
    states = [PartState(p, part_status(amount, p, due, today, grace_days)) for (due, amount), p in zip(parts, paid)]
    return states, promise_status([s.status for s in states])


def reminder_dates(due_date: date, promised_on: date, days_before: int) -> list[tuple[str, date]]:
    """("before", the day N days ahead) and ("due", the due day), each only if it comes after the day of the
    promise: the customer has just had the promise confirmed."""
    dates = [("before", due_date - timedelta(days=days_before))] if days_before > 0 else []
    dates.append(("due", due_date))
    return [(kind, day) for kind, day in dates if day > promised_on]


def claim_confirmed(payments: Iterable[tuple[date, Decimal]], since: date, minimum: Decimal) -> bool:
    """An "already paid" claim holds when the feed shows at least the minimum due paid since `since` (the
    due date the claim is about)."""
    paid = sum((amount for paid_on, amount in payments if paid_on >= since), ZERO)
    return paid > ZERO and paid >= minimum


# ------------------------------------------------------------------------------------------------- time

def local_midnight(day: date, zone: str) -> datetime:
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(zone)).astimezone(timezone.utc)


def window_opening(now: datetime, zone: str, start: time, end: time) -> datetime:
    """`now` when it is inside the window in that zone, else the window's next opening there."""
    tz = ZoneInfo(zone)
    local = now.astimezone(tz)
    if start <= local.time() < end:
        return now
    day = local.date() if local.time() < start else local.date() + timedelta(days=1)
    # An opening inside a daylight-saving gap is read with the offset before it, so it lands just after the gap.
    return datetime.combine(day, start, tzinfo=tz).astimezone(timezone.utc)


def next_window_opening(now: datetime, zones: Iterable[str], start: time, end: time) -> Optional[datetime]:
    """The first moment from `now` inside the window in every zone the customer may be in; None when the
    windows never overlap (zones too far apart)."""
    zones = sorted(set(zones))
    moment = now.astimezone(timezone.utc)
    for _ in range(8):
        later = max(window_opening(moment, zone, start, end) for zone in zones)
        if later == moment:
            return moment
        moment = later
    return None


def due_moment(kind: str, due_on: date, due_at: Optional[datetime], zones: list[str], home_zone: str, start: time, end: time) -> Optional[datetime]:
    """When a follow-up is due: its own moment, else the start of its day in the customer's time zone; a
    contact waits for the window."""
    if due_at is not None:
        return as_utc(due_at)
    midnight = local_midnight(due_on, home_zone)
    return next_window_opening(midnight, zones, start, end) if kind in CONTACT_KINDS else midnight


def retry_after_refusal(rule: str, now: datetime, zones: list[str], home_zone: str, start: time, end: time) -> Optional[datetime]:
    """When to try a refused contact again; None when the refusal is final."""
    if rule == "calling_window":
        opening = next_window_opening(now, zones, start, end)
        return None if opening is None else max(opening, now + RECHECK)
    if rule in CAP_RULES:
        tomorrow = now.astimezone(ZoneInfo(home_zone)).date() + timedelta(days=1)
        return next_window_opening(local_midnight(tomorrow, home_zone), zones, start, end)
    return None


# ------------------------------------------------------------------------------------- broken promise

def broken_promise_line(session: Session, account: Account, language: str) -> Optional[str]:
    """What the bot says first after verification when the account's latest promise was missed: "The $400.00
    due on December 11, 2026 hasn't reached us yet." None when there is nothing to say."""
    promise = session.scalar(
        select(Promise).where(Promise.account_id == account.id, Promise.status != "cancelled").order_by(Promise.id.desc()).limit(1)
    )
    if promise is None or promise.status not in MISSED:
        return None
    part = session.scalar(
        select(PromiseInstallment)
        .where(PromiseInstallment.promise_id == promise.id, PromiseInstallment.status.in_(MISSED))
        .order_by(PromiseInstallment.seq)
        .limit(1)
    )
    if part is None:
        return None
    return say(
        "broken_promise_line", language,
        amount=formatting.money(part.amount - part.paid, promise.currency, language),
        date=formatting.day(part.due_date, language),
    )


# ------------------------------------------------------------------------------------ agent callbacks

def schedule_agent_callback(session: Session, handoff: Handoff, now: Optional[datetime] = None) -> Optional[FollowUp]:
    """A colleague's callback for a caller no agent could take (nobody answered the agent line, or the number
    has none), placed by kindly.tasks inside the calling window. At most `max_agent_callbacks` for one
    handoff; after that it waits in the console. None when the limit is reached."""
    policy = load_policy()
    earlier = session.scalar(select(func.count(FollowUp.id)).where(FollowUp.handoff_id == handoff.id, FollowUp.kind == "callback"))
    if earlier >= policy.max_agent_callbacks:
        return None
    account = session.get(Account, handoff.account_id)
    due_at = (now or datetime.now(timezone.utc)) + timedelta(minutes=policy.agent_callback_after_minutes)
    follow_up = records.create_follow_up(session, account, handoff.conversation_id, "callback", None,
                                         f"a colleague calls back for handoff #{handoff.id}", due_at=due_at, handoff_id=handoff.id)
    session.flush()
    return follow_up
