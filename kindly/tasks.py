"""Follow-through on the task queue (kindly/queue.py).

The database is the record of what is due; the queue only carries the work. Every minute beat runs `sweep`:
it settles promises whose parts have passed their grace, creates the reminders and re-contacts that are
needed (each once: follow_ups.key is unique), and queues `run_follow_up` for each follow-up that is due.

`run_follow_up` is idempotent: it first claims its follow-up (open -> running in one UPDATE), so a second copy,
or a run after the work is done, finds nothing to do. A Twilio or network error puts the follow-up back to
open and the task is retried with exponential backoff; a task that fails for good marks the follow-up
`failed` with the error (GET /api/follow-ups?status=failed). A follow-up queued but never run (a lost
message, a dead worker) is queued again after LEASE.

Contacts go through the contact policy (reserve_contact) with their purpose: reminder (an SMS before each
promised part and on its due day), callback (a call the customer asked for, or a colleague's callback when no
agent could take a call), recontact (one call after a missed promise). An agent's SMS held for the window
(agent_reply) goes through the agent's rules instead (check_agent_reply: no hold or cap, the window and the
opt-out). A promise's SMS confirmation or an agent's notice that Twilio failed to take at first (confirmation,
agent_notice; channels/outcomes.py) is sent again, as it was. A refusal that passes with time (the
window, a cap) moves the follow-up to the next moment allowed; any other ends it, `cancelled`, with the rule.
"""
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Optional, Union

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased
from twilio.twiml.voice_response import VoiceResponse

from channels import voice
from channels.agent_replies import send_agent_reply
from channels.outbound import place_call, send_text
from channels.outcomes import agent_notice, notify_agent_of_handoff, promise_confirmation
from channels.twilio_edge import SAY_LANGUAGES, TWILIO_ERRORS, our_number, send_sms, voice_for
from kindly import follow_through, formatting, records
from kindly.contact_policy import Refusal, contact_zones, reserve_contact
from kindly.db import session_scope
from kindly.models import (
    Account, ContactAttempt, Conversation, FollowUp, Handoff, Payment, Promise, PromiseInstallment, utcnow,
)
from kindly.payments import latest_promise, local_today, promised_on, settle_promise
from kindly.policy import load_policy
from kindly.queue import app
from kindly.settings import settings
from kindly.texts import say

logger = logging.getLogger("kindly.tasks")
MAX_RETRIES = int(os.environ.get("KINDLY_TASK_MAX_RETRIES", "5"))
LEASE = timedelta(minutes=30)


def moment(now: Optional[str]) -> datetime:
    """The task's idea of now: an explicit ISO moment (to replay a given time), else the clock."""
    return datetime.fromisoformat(now).astimezone(timezone.utc) if now else datetime.now(timezone.utc)


# ------------------------------------------------------------------------------------------------ sweep

@app.task(name="kindly.sweep")
def sweep(now: Optional[str] = None) -> dict:
    at = moment(now)
    with session_scope() as session:
        settled = settle_due_promises(session, at)
    with session_scope() as session:
        recontacts = schedule_recontacts(session, at)
        reminders = schedule_reminders(session, at)
    due = queue_due_follow_ups(at)
    for follow_up_id in due:
        run_follow_up.delay(follow_up_id, now=now)
    summary = {"settled": settled, "recontacts": recontacts, "reminders": reminders, "queued": len(due)}
    logger.info("sweep at %s: %s", at.isoformat(), summary)
    return summary


def settle_due_promises(session: Session, at: datetime) -> int:
    """Promises with a part still open past its grace (in UTC terms; settle_promise applies the local day)."""
    latest_due = at.date() - timedelta(days=load_policy().grace_days)
    promises = session.scalars(
        select(Promise).where(
            Promise.status.notin_(("cancelled", "kept")),
            exists().where(
                PromiseInstallment.promise_id == Promise.id, PromiseInstallment.status == "open",
                PromiseInstallment.due_date <= latest_due,
            ),
            _is_latest(),
        )
    ).all()
    for promise in promises:
        settle_promise(session, promise, at)
    return len(promises)


def _is_latest():
    """The promise is its account's latest (kindly.payments.latest_promise): an older one is history."""
    newer = aliased(Promise)
    return ~exists().where(newer.account_id == Promise.account_id, newer.id > Promise.id, newer.status != "cancelled")


def schedule_recontacts(session: Session, at: datetime) -> int:
    """One re-contact for each latest promise that was missed (broken or partially kept)."""
    promises = session.scalars(
        select(Promise).where(
            Promise.status.in_(follow_through.MISSED),
            ~exists().where(FollowUp.promise_id == Promise.id, FollowUp.kind == "recontact"),
            _is_latest(),
        )
    ).all()
    created = 0
    for promise in promises:
        account = session.get(Account, promise.account_id)
        created += _create_once(session, FollowUp(
            account_id=account.id, conversation_id=promise.conversation_id, kind="recontact", key=f"recontact:{promise.id}",
            promise_id=promise.id, due_on=local_today(account, at), due_at=at, note=f"promise #{promise.id} {promise.status}",
        ))
    return created


def schedule_reminders(session: Session, at: datetime) -> int:
    """Reminders for the parts due in the next few days that are not paid yet, each day's created once."""
    days_before = load_policy().reminder_days_before
    rows = session.execute(
        select(PromiseInstallment, Promise)
        .join(Promise, Promise.id == PromiseInstallment.promise_id)
        .where(
            PromiseInstallment.status == "open",
            PromiseInstallment.due_date.between(at.date() - timedelta(days=1), at.date() + timedelta(days=days_before + 1)),
            Promise.status.notin_(("cancelled", "kept")),
            _is_latest(),
        )
    ).all()
    created = 0
    for part, promise in rows:
        account = session.get(Account, promise.account_id)
        today = local_today(account, at)
        for kind, day in follow_through.reminder_dates(part.due_date, promised_on(promise, account), days_before):
            if day >= today:
                created += _create_once(session, FollowUp(
                    account_id=account.id, conversation_id=promise.conversation_id, kind="reminder",
                    key=f"reminder:{part.id}:{kind}", promise_id=promise.id, installment_id=part.id, due_on=day,
                    note=f"part {part.seq} of promise #{promise.id}, due {part.due_date.isoformat()}",
                ))
    return created


def _create_once(session: Session, follow_up: FollowUp) -> int:
    if session.scalar(select(FollowUp.id).where(FollowUp.key == follow_up.key)):
        return 0
    try:
        with session.begin_nested():
            session.add(follow_up)
    except IntegrityError:  # a concurrent sweep created it first
        return 0
    return 1


def queue_due_follow_ups(at: datetime) -> list[int]:
    """Claim for the queue every open follow-up that is due (and every one queued or running past the lease)."""
    stale = at - LEASE
    policy = load_policy()
    queued = []
    with session_scope() as session:
        candidates = session.scalars(
            select(FollowUp).where(
                or_(
                    and_(FollowUp.status == "open", or_(FollowUp.enqueued_at.is_(None), FollowUp.enqueued_at < stale)),
                    and_(FollowUp.status == "running", FollowUp.enqueued_at < stale),
                ),
                # Coarse: due_on is a local day, at most a day ahead of UTC's; a postponed one waits for its due_at.
                FollowUp.due_on <= at.date() + timedelta(days=1),
                or_(FollowUp.due_at.is_(None), FollowUp.due_at <= at),
            )
        ).all()
        for follow_up in candidates:
            account = session.get(Account, follow_up.account_id)
            start, end = policy.contact_hours(account.country)
            due = follow_through.due_moment(
                follow_up.kind, follow_up.due_on, follow_up.due_at, sorted(contact_zones(account)), account.timezone, start, end,
            )
            if due is None:
                _close(follow_up, Outcome("cancelled", "no moment is inside the calling window in every time zone of the customer"))
                continue
            if due > at:
                continue
            claimed = session.execute(
                update(FollowUp)
                .where(FollowUp.id == follow_up.id, FollowUp.status == follow_up.status, _same(FollowUp.enqueued_at, follow_up.enqueued_at))
                .values(status="open", enqueued_at=at)
            ).rowcount
            if claimed:
                queued.append(follow_up.id)
    return queued


def _same(column, value):
    return column.is_(None) if value is None else column == value


# ------------------------------------------------------------------------------------------ follow-ups

@dataclass
class Outcome:
    status: str  # done | cancelled | open (to be tried again at `until`)
    detail: str
    until: Optional[datetime] = None
    after: Optional[Callable[[], None]] = None  # run once the outcome is committed


@dataclass
class Contact:
    """A follow-up's contact, made outside any transaction: reserve it, then send it."""

    account_id: int
    channel: str
    purpose: str
    send: Callable[[ContactAttempt], object]
    done: str


@dataclass
class Text:
    """An SMS that is not a contact attempt (a promise's confirmation, an agent's notice), sent outside any
    transaction."""

    to: str
    body: str
    done: str


@dataclass
class HeldReply:
    """An agent's SMS held for the window (channels/agent_replies.py), sent outside any transaction."""

    account_id: int
    handoff_id: int
    text: str


class FollowUpTask(app.Task):
    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        follow_up_id = kwargs.get("follow_up_id", args[0] if args else None)
        if follow_up_id is not None:
            with session_scope() as session:
                follow_up = session.get(FollowUp, follow_up_id)
                if follow_up is not None and follow_up.status in ("open", "running"):
                    _close(follow_up, Outcome("failed", f"{type(exc).__name__}: {exc}"))
        logger.error("follow-up %s failed for good: %r", follow_up_id, exc)


@app.task(
    bind=True, base=FollowUpTask, name="kindly.follow_up", autoretry_for=TWILIO_ERRORS, retry_backoff=True,
    retry_backoff_max=600, retry_jitter=True, max_retries=MAX_RETRIES,
)
def run_follow_up(self, follow_up_id: int, now: Optional[str] = None) -> str:
    at = moment(now)
    if not _claim(follow_up_id):
        return "nothing to do"
    with session_scope() as session:
        follow_up = session.get(FollowUp, follow_up_id)
        step = HANDLERS[follow_up.kind](session, follow_up, at)
        if isinstance(step, Outcome):
            _close(follow_up, step)
    if not isinstance(step, Outcome):
        try:
            step = _carry_out(step, at)
        except TWILIO_ERRORS as error:
            _release(follow_up_id, error)
            raise
        with session_scope() as session:
            _close(session.get(FollowUp, follow_up_id), step)
    if step.after:
        step.after()
    return f"{step.status}: {step.detail}"


def _claim(follow_up_id: int) -> bool:
    with session_scope() as session:
        return session.execute(
            update(FollowUp).where(FollowUp.id == follow_up_id, FollowUp.status == "open")
            .values(status="running", attempts=FollowUp.attempts + 1)
        ).rowcount == 1


def _release(follow_up_id: int, error: Exception) -> None:
    """Back to open for the retry (the lease keeps the sweep from queueing it meanwhile)."""
    with session_scope() as session:
        follow_up = session.get(FollowUp, follow_up_id)
        follow_up.status, follow_up.last_error = "open", f"{type(error).__name__}: {error}"[:2000]


def _close(follow_up: FollowUp, outcome: Outcome) -> None:
    follow_up.status = outcome.status
    if outcome.status == "open":
        follow_up.due_at, follow_up.enqueued_at, follow_up.last_error = outcome.until, None, outcome.detail
    else:
        follow_up.closed_at = utcnow()
        if outcome.status != "done":
            follow_up.last_error = outcome.detail[:2000]
    records.audit(
        Session.object_session(follow_up), "follow_through", f"follow_up_{outcome.status}", "follow_up", follow_up.id,
        kind=follow_up.kind, detail=outcome.detail, until=outcome.until.isoformat() if outcome.until else None,
    )


def _contact(contact: Contact, at: datetime) -> Outcome:
    reserved = reserve_contact(contact.account_id, contact.channel, contact.purpose, now=at)
    if isinstance(reserved, Refusal):
        return _refused(contact.account_id, reserved, at)
    contact.send(reserved)
    return Outcome("done", contact.done)


def _carry_out(step: Union[Contact, HeldReply, Text], at: datetime) -> Outcome:
    if isinstance(step, Contact):
        return _contact(step, at)
    if isinstance(step, HeldReply):
        return _reply(step, at)
    send_sms(step.to, step.body)
    return Outcome("done", step.done)


def _reply(reply: HeldReply, at: datetime) -> Outcome:
    refusal = send_agent_reply(reply.handoff_id, reply.text, at)
    return _refused(reply.account_id, refusal, at) if refusal else Outcome("done", f"the agent's reply sent (handoff #{reply.handoff_id})")


def _refused(account_id: int, refusal: Refusal, at: datetime) -> Outcome:
    with session_scope() as session:
        account = session.get(Account, account_id)
        start, end = load_policy().contact_hours(account.country)
        until = follow_through.retry_after_refusal(refusal.rule, at, sorted(contact_zones(account)), account.timezone, start, end)
    detail = f"refused by the contact policy: {refusal.rule}: {refusal.message}"
    return Outcome("open", detail, until) if until else Outcome("cancelled", detail)


# ------------------------------------------------------------------------------------------- handlers

def remind(session: Session, follow_up: FollowUp, at: datetime) -> Union[Outcome, Contact]:
    part = session.get(PromiseInstallment, follow_up.installment_id)
    promise = session.get(Promise, part.promise_id)
    account = session.get(Account, promise.account_id)
    latest = latest_promise(session, account.id)
    if latest is None or latest.id != promise.id:
        return Outcome("cancelled", "the promise was replaced")
    remaining = part.amount - part.paid
    if remaining <= 0:
        return Outcome("done", "paid in full: no reminder needed")
    today = local_today(account, at)
    if today > part.due_date:
        return Outcome("cancelled", "the due date has passed")
    body = say(
        "reminder_sms_due" if today == part.due_date else "reminder_sms_before", account.language,
        amount=formatting.money(remaining, promise.currency, account.language),
        date=formatting.day(part.due_date, account.language),
    )
    return Contact(account.id, "sms", "reminder", lambda reserved: send_text(reserved, body), "reminder sent")


def recontact(session: Session, follow_up: FollowUp, at: datetime) -> Union[Outcome, Contact]:
    promise = session.get(Promise, follow_up.promise_id)
    latest = latest_promise(session, promise.account_id)
    if latest is None or latest.id != promise.id:
        return Outcome("cancelled", "a newer promise replaced the missed one")
    settle_promise(session, promise, at)  # a late payment may have come in since
    if promise.status not in follow_through.MISSED:
        return Outcome("cancelled", f"the promise is {promise.status} now")
    return Contact(promise.account_id, "voice", "recontact", place_call, "re-contact call placed")


def call_back(session: Session, follow_up: FollowUp, at: datetime) -> Union[Outcome, Contact]:
    if follow_up.handoff_id is None:
        return Contact(follow_up.account_id, "voice", "callback", place_call, "callback call placed")
    handoff = session.get(Handoff, follow_up.handoff_id)
    if handoff.status != "waiting":
        return Outcome("cancelled", f"handoff #{handoff.id} is {handoff.status}")
    account = session.get(Account, follow_up.account_id)
    number = our_number(session, None)
    agent_line = number.agent_line or settings.agent_line
    if not agent_line:
        raise LookupError("no agent line is configured for the colleague's callback (AGENT_LINE)")
    response = VoiceResponse()
    response.say(say("callback_connecting", account.language), voice=voice_for(number, account.language), language=SAY_LANGUAGES[account.language])
    response.append(voice.dial_agent(agent_line, handoff.conversation_id, handoff.id))
    twiml = str(response)
    return Contact(account.id, "voice", "callback", lambda reserved: place_call(reserved, twiml), f"callback to a colleague placed (handoff #{handoff.id})")


def verify_payment(session: Session, follow_up: FollowUp, at: datetime) -> Outcome:
    account = session.get(Account, follow_up.account_id)
    payments = session.execute(select(Payment.paid_on, Payment.amount).where(Payment.account_id == account.id)).all()
    if follow_through.claim_confirmed(payments, account.due_date, account.minimum_due):
        records.audit(session, "follow_through", "payment_claim_confirmed", "account", account.id, follow_up=follow_up.id)
        return Outcome("done", "the payments feed confirms the payment")
    conversation = session.get(Conversation, follow_up.conversation_id) if follow_up.conversation_id else None
    if conversation is None:
        raise LookupError(f"the payment claim of follow-up #{follow_up.id} has no conversation to hand off")
    handoff = records.create_handoff(session, account, conversation, "payment_unconfirmed", follow_up.note)
    handoff_id = handoff.id
    return Outcome("done", f"not in the payments feed: handoff #{handoff_id}", after=lambda: notify_agent_of_handoff(handoff_id))


def send_held_reply(session: Session, follow_up: FollowUp, at: datetime) -> Union[Outcome, HeldReply]:
    handoff = session.get(Handoff, follow_up.handoff_id)
    if handoff.status == "resolved":
        return Outcome("cancelled", f"handoff #{handoff.id} was resolved before the window opened")
    return HeldReply(follow_up.account_id, handoff.id, follow_up.note)


def resend_confirmation(session: Session, follow_up: FollowUp, at: datetime) -> Union[Outcome, Text]:
    summary = promise_confirmation(follow_up.conversation_id)
    if summary is None:
        return Outcome("cancelled", "no promise to confirm any more, or the customer opted out of SMS")
    return Text(session.get(Account, follow_up.account_id).phone, summary, "the promise's confirmation sent")


def resend_agent_notice(session: Session, follow_up: FollowUp, at: datetime) -> Union[Outcome, Text]:
    agent_line, body = agent_notice(follow_up.handoff_id, follow_up.note or None)
    if not agent_line:
        return Outcome("cancelled", "the number has no agent line any more")
    return Text(agent_line, body, f"the agent's notice of handoff #{follow_up.handoff_id} sent")


HANDLERS = {"reminder": remind, "recontact": recontact, "callback": call_back, "verify_payment": verify_payment,
            "agent_reply": send_held_reply, "confirmation": resend_confirmation, "agent_notice": resend_agent_notice}
