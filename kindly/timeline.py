"""What we already know about an account when a customer contacts us: the open promise and its next part,
open handoffs, flags, opt-outs, recent outcomes, the last conversation's stage and the verification lockout.
The gateway sends it to the engine with every message; the actions, the handoff summary and the console read it."""
from datetime import datetime, timedelta, timezone
from typing import Optional

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kindly.models import Account, Conversation, Handoff, Promise, PromiseInstallment, VerificationAttempt, as_utc
from kindly.policy import load_policy

OPEN_HANDOFF_STATUSES = ("waiting", "claimed")
RECENT_OUTCOMES = 5


def open_promise(session: Session, account_id: int) -> Optional[Promise]:
    """The promise in force: at most one per account, because a new plan supersedes the old one."""
    return session.scalar(
        select(Promise).where(Promise.account_id == account_id, Promise.status == "open").order_by(Promise.id.desc())
    )


def next_part(session: Session, promise: Promise, today) -> Optional[PromiseInstallment]:
    """The first part not yet due in the past; the last part once every date has passed."""
    parts = list(session.scalars(select(PromiseInstallment).where(PromiseInstallment.promise_id == promise.id).order_by(PromiseInstallment.seq)))
    return next((p for p in parts if p.due_date >= today), parts[-1] if parts else None)


def failed_verifications(session: Session, account_id: int, now: Optional[datetime] = None) -> int:
    """Failed date-of-birth attempts in the policy's window, counted since the last success."""
    policy = load_policy()
    now = now or datetime.now(timezone.utc)
    since = now - timedelta(hours=policy.verification_window_hours)
    last_success = session.scalar(
        select(func.max(VerificationAttempt.at)).where(VerificationAttempt.account_id == account_id, VerificationAttempt.succeeded.is_(True))
    )
    if last_success is not None:
        since = max(since, as_utc(last_success))
    return session.scalar(
        select(func.count(VerificationAttempt.id)).where(
            VerificationAttempt.account_id == account_id, VerificationAttempt.succeeded.is_(False), VerificationAttempt.at > since
        )
    ) or 0


def verification_locked(session: Session, account_id: int) -> bool:
    return failed_verifications(session, account_id) >= load_policy().max_verification_attempts


def account_timeline(session: Session, account: Account, today, current_conversation_id: Optional[str] = None) -> dict:
    """A JSON-ready summary. It carries no date of birth, card number or ID: it is stored with the engine's tracker."""
    promise = open_promise(session, account.id)
    promise_view = None
    if promise is not None:
        part = next_part(session, promise, today)
        promise_view = {
            "id": promise.id, "plan_type": promise.plan_type, "installments": promise.installments,
            "total": str(promise.total), "currency": promise.currency, "created_at": promise.created_at.isoformat(),
            "next_due_date": part.due_date.isoformat() if part else promise.due_date.isoformat(),
            "next_amount": str(part.amount if part else promise.amount),
        }
    handoffs = session.scalars(
        select(Handoff).where(Handoff.account_id == account.id, Handoff.status.in_(OPEN_HANDOFF_STATUSES)).order_by(Handoff.id)
    )
    earlier = list(session.scalars(
        select(Conversation)
        .where(Conversation.account_id == account.id, Conversation.id != (current_conversation_id or ""))
        .order_by(Conversation.started_at.desc())
        .limit(RECENT_OUTCOMES)
    ))
    return {
        "open_promise": promise_view,
        "open_handoffs": [{"id": h.id, "reason": h.reason, "channel": h.channel, "status": h.status} for h in handoffs],
        "flags": sorted(account.flags),
        "opt_outs": sorted(o.channel for o in account.opt_outs),
        "recent_outcomes": [
            {"channel": c.channel, "direction": c.direction, "disposition": c.disposition, "reason_code": c.reason_code,
             "started_at": c.started_at.isoformat()}
            for c in earlier
        ],
        "last_stage": earlier[0].stage if earlier else None,
        "last_reason_code": next((c.reason_code for c in earlier if c.reason_code), None),
        "verification_locked": verification_locked(session, account.id),
    }
