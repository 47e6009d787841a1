"""Writes that the actions, the channels and the API share: each outcome is recorded in exactly one place."""
from datetime import date, datetime, timezone
from typing import Optional
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from kindly.models import (
    FLAGS,
    Account,
    AccountFlag,
    AuditLog,
    Conversation,
    FollowUp,
    Handoff,
    HandoffMessage,
    OptOut,
    Promise,
    PromiseInstallment,
    TranscriptTurn,
    VerificationAttempt,
    utcnow,
)
from kindly.plans import Plan
from kindly.timeline import account_timeline


def audit(session: Session, actor: str, action: str, entity: str, entity_id, **detail) -> None:
    session.add(AuditLog(actor=actor, action=action, entity=entity, entity_id=str(entity_id), detail=detail))


def set_flag(session: Session, account: Account, flag: str, by: str, reason: str) -> AccountFlag:
    """Put a flag in force (idempotent: a flag already in force is returned as it is)."""
    if flag not in FLAGS:
        raise ValueError(f"unknown flag {flag!r}")
    existing = session.scalar(
        select(AccountFlag).where(AccountFlag.account_id == account.id, AccountFlag.flag == flag, AccountFlag.cleared_at.is_(None))
    )
    if existing:
        return existing
    row = AccountFlag(account_id=account.id, flag=flag, set_by=by, set_reason=reason[:1000])
    session.add(row)
    session.flush()
    session.expire(account, ["flag_history"])
    audit(session, by, "flag_set", "account", account.id, flag=flag, reason=reason[:1000])
    return row


def clear_flag(session: Session, account: Account, flag: str, by: str, reason: str) -> Optional[AccountFlag]:
    """Lift a flag in force; None when it was not in force."""
    row = session.scalar(
        select(AccountFlag).where(AccountFlag.account_id == account.id, AccountFlag.flag == flag, AccountFlag.cleared_at.is_(None))
    )
    if row is None:
        return None
    row.cleared_at, row.cleared_by, row.cleared_reason = utcnow(), by, reason[:1000]
    session.flush()
    session.expire(account, ["flag_history"])
    audit(session, by, "flag_cleared", "account", account.id, flag=flag, reason=reason[:1000])
    return row


def end_conversation(session: Session, conversation: Conversation, disposition: str) -> None:
    conversation.disposition = disposition
    conversation.stage = "closed"
    conversation.ended_at = conversation.ended_at or utcnow()
    audit(session, "bot", "conversation_ended", "conversation", conversation.id, disposition=disposition)


def record_promise(session: Session, account: Account, conversation: Conversation, plan: Plan) -> Promise:
    """Idempotent: a conversation holds at most one promise, so a retried confirmation returns the first.
    A new promise supersedes the account's open one (cancelled, pointing at the new one, audited): promises
    never stack on the same balance."""
    existing = session.scalar(select(Promise).where(Promise.conversation_id == conversation.id))
    if existing:
        return existing
    promise = Promise(
        account_id=account.id,
        conversation_id=conversation.id,
        amount=plan.amount,
        currency=account.currency,
        due_date=plan.due_date,
        plan_type=plan.plan_type,
        installments=plan.installments,
        total=plan.total,
        status="open",
        schedule=[PromiseInstallment(seq=i + 1, due_date=d, amount=a) for i, (d, a) in enumerate(plan.schedule)],
    )
    session.add(promise)
    session.flush()
    for old in session.scalars(
        select(Promise).where(Promise.account_id == account.id, Promise.status == "open", Promise.id != promise.id)
    ):
        old.status, old.superseded_by_id = "cancelled", promise.id
        audit(session, "bot", "promise_superseded", "promise", old.id, superseded_by=promise.id)
    audit(session, "bot", "promise_recorded", "promise", promise.id, plan_type=plan.plan_type, total=str(plan.total))
    return promise


def record_verification(session: Session, account: Account, conversation: Conversation, succeeded: bool) -> None:
    session.add(VerificationAttempt(account_id=account.id, conversation_id=conversation.id, channel=conversation.channel, succeeded=succeeded))
    session.flush()
    audit(session, "bot", "verification_passed" if succeeded else "verification_failed_attempt", "conversation", conversation.id)


def record_opt_out(session: Session, account: Account, channel: str, conversation_id: Optional[str]) -> OptOut:
    existing = session.scalar(select(OptOut).where(OptOut.account_id == account.id, OptOut.channel == channel))
    if existing:
        return existing
    opt_out = OptOut(account_id=account.id, channel=channel, conversation_id=conversation_id)
    session.add(opt_out)
    audit(session, "customer", "opted_out", "account", account.id, channel=channel)
    return opt_out


def remove_opt_out(session: Session, account: Account, channel: str) -> None:
    existing = session.scalar(select(OptOut).where(OptOut.account_id == account.id, OptOut.channel == channel))
    if existing:
        session.delete(existing)
        audit(session, "customer", "opted_in", "account", account.id, channel=channel)


def create_follow_up(
    session: Session, account: Account, conversation_id: Optional[str], kind: str, due_on: Optional[date], note: str,
    due_at: Optional[datetime] = None, handoff_id: Optional[int] = None,
) -> FollowUp:
    """A follow-up due on a day (in the customer's time zone), or at a moment (`due_at`, stored in UTC; its day is
    then the moment's local day unless given)."""
    if due_at is not None:
        due_at = due_at.astimezone(timezone.utc)
        due_on = due_on or due_at.astimezone(ZoneInfo(account.timezone)).date()
    follow_up = FollowUp(account_id=account.id, conversation_id=conversation_id, kind=kind, due_on=due_on, due_at=due_at,
                         note=note, handoff_id=handoff_id)
    session.add(follow_up)
    return follow_up


def handoff_summary(session: Session, account: Account, conversation: Conversation, reason: str, last_message: str, matched_phrase: str = "") -> str:
    """One paragraph for the agent: who, why, where the conversation got to, and what the account's timeline holds."""
    timeline = account_timeline(session, account, utcnow().date(), conversation.id)
    parts = [
        f"{account.name} (account {account.external_id}, {account.language}, segment {account.segment}) "
        f"was handed off by {conversation.channel} for '{reason}'.",
        "Identity verified." if conversation.verified else "Identity NOT verified: verify before discussing the account.",
    ]
    if conversation.verified:
        parts.append(
            f"Overdue balance {account.balance} {account.currency}, minimum due {account.minimum_due}, "
            f"{account.days_past_due} days past due."
        )
    if conversation.reason_code:
        parts.append(f"Stated reason: {conversation.reason_code} ({conversation.reason_text or 'no detail'}).")
    promise = timeline["open_promise"]
    if promise:
        parts.append(
            f"Open promise #{promise['id']}: {promise['plan_type']} {promise['total']} {promise['currency']}, "
            f"next {promise['next_amount']} due {promise['next_due_date']}."
        )
    else:
        parts.append("No open promise.")
    if timeline["flags"]:
        parts.append(f"Flags: {', '.join(timeline['flags'])}.")
    if timeline["opt_outs"]:
        parts.append(f"Opted out of: {', '.join(timeline['opt_outs'])}.")
    if timeline["verification_locked"]:
        parts.append("Date-of-birth verification is locked after repeated failures.")
    if matched_phrase:
        parts.append(f'Safety phrase matched: "{matched_phrase}".')
    if last_message:
        parts.append(f'Last customer message: "{last_message}".')
    return " ".join(parts)


def create_handoff(
    session: Session, account: Account, conversation: Conversation, reason: str, last_message: str, matched_phrase: str = ""
) -> Handoff:
    handoff = Handoff(
        account_id=account.id,
        conversation_id=conversation.id,
        reason=reason,
        channel=conversation.channel,
        status="waiting",
        summary=handoff_summary(session, account, conversation, reason, last_message, matched_phrase),
    )
    session.add(handoff)
    session.flush()
    conversation.stage = "handoff"
    conversation.disposition = "handoff"
    conversation.ended_at = utcnow()
    audit(session, "bot", "handoff_created", "handoff", handoff.id, reason=reason)
    return handoff


def handoff_holding(session: Session, account: Account) -> tuple[Optional[Handoff], bool]:
    """The handoff that holds this customer's thread, whatever channel it started on: one a person has not
    resolved, or one resolved without giving the conversation back to the bot, which reopens (audited) so that
    it shows in the queue again. (None, False) when the bot may answer; the flag says it just reopened."""
    handoff = session.scalar(select(Handoff).where(Handoff.account_id == account.id).order_by(Handoff.id.desc()))
    if handoff is None or (handoff.status == "resolved" and handoff.resume_bot):
        return None, False
    if handoff.status != "resolved":
        return handoff, False
    handoff.status, handoff.resolved_at = "waiting", None
    audit(session, "customer", "handoff_reopened", "handoff", handoff.id)
    return handoff, True


def add_customer_message(session: Session, handoff: Handoff, text: str, channel: str) -> None:
    """What the customer sends while a person has the thread: on the handoff and in its conversation's transcript."""
    session.add(HandoffMessage(handoff_id=handoff.id, role="user", channel=channel, text=text))
    session.add(TranscriptTurn(conversation_id=handoff.conversation_id, role="user", text=text))
