"""Whether an automated contact is allowed right now: flags, opt-outs, the calling window and the caps.
One module answers for every sender (the API today, campaigns later)."""
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from typing import Optional
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kindly.models import Account, ContactAttempt, Conversation, OptOut
from kindly.policy import Policy, load_policy


FLAG_REFUSALS = {
    "wrong_number": "the number is marked as a wrong number",
    "cease": "the customer asked us to cease contact",
    "legal_hold": "the account is on legal hold",
    "dispute": "the account has an open dispute",
    "fraud": "the account has a fraud claim under review",
    "deceased": "the customer is reported deceased",
    "vulnerable": "the customer is marked vulnerable",
}


@dataclass(frozen=True)
class Refusal:
    rule: str
    message: str


def _local_window(policy: Policy, country: str) -> tuple[time, time]:
    window = policy.calling_window.get(country, policy.calling_window["US"])
    return time.fromisoformat(window["start"]), time.fromisoformat(window["end"])


def check_contact(session: Session, account: Account, channel: str, now: Optional[datetime] = None) -> Optional[Refusal]:
    """None when the contact may go ahead, else the first rule that refuses it."""
    policy = load_policy()
    now = now or datetime.now(timezone.utc)
    for flag, message in FLAG_REFUSALS.items():
        if flag in account.flags:
            return Refusal(flag, message)
    if session.scalar(select(OptOut.id).where(OptOut.account_id == account.id, OptOut.channel == channel)):
        return Refusal("opted_out", f"the customer opted out of {channel}")

    local = now.astimezone(ZoneInfo(account.timezone))
    start, end = _local_window(policy, account.country)
    if not start <= local.time() < end:
        return Refusal(
            "calling_window",
            f"{local:%H:%M} is outside the {account.country} contact window {start:%H:%M}-{end:%H:%M} in {account.timezone}",
        )
    if channel == "voice":
        return _check_call_caps(session, account, policy, now, local)
    return None


def _attempts_since(session: Session, account: Account, since: datetime, connected_only: bool = False) -> int:
    query = select(func.count(ContactAttempt.id)).where(
        ContactAttempt.account_id == account.id, ContactAttempt.channel == "voice", ContactAttempt.at >= since
    )
    if connected_only:
        query = query.where(ContactAttempt.connected.is_(True))
    return session.scalar(query) or 0


def _check_call_caps(session: Session, account: Account, policy: Policy, now: datetime, local: datetime) -> Optional[Refusal]:
    caps = policy.contact_caps.get(account.country, policy.contact_caps["US"])
    if account.country == "CN":
        day_start = local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(timezone.utc)
        if _attempts_since(session, account, day_start) >= caps["attempts_per_day"]:
            return Refusal("attempt_cap", f"{caps['attempts_per_day']} call attempts already made today")
        if _attempts_since(session, account, day_start, connected_only=True) >= caps["connected_per_day"]:
            return Refusal("connected_cap", f"{caps['connected_per_day']} connected calls already made today")
        return None
    week_ago = now - timedelta(days=7)
    if _attempts_since(session, account, week_ago) >= caps["attempts_per_7_days"]:
        return Refusal("attempt_cap", f"{caps['attempts_per_7_days']} call attempts in the last 7 days")
    quiet_since = now - timedelta(days=caps["quiet_days_after_conversation"])
    talked = session.scalar(
        select(Conversation.id).where(
            Conversation.account_id == account.id, Conversation.verified.is_(True), Conversation.started_at >= quiet_since
        )
    )
    if talked:
        return Refusal("recent_conversation", f"we spoke with the customer in the last {caps['quiet_days_after_conversation']} days")
    return None
