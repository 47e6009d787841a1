"""Follow-ups to what happened in a conversation that reach beyond it: the promise confirmation by SMS and
the agent's SMS notice of a handoff. Each is tried at once; when Twilio fails, a follow-up (`confirmation`,
`agent_notice`) is written for the follow-through worker, which tries again with backoff (kindly/tasks.py) and
marks it failed, visibly, if it never goes."""
from typing import Optional

from sqlalchemy import select

from channels.twilio_edge import TWILIO_ERRORS, logger, our_number, send_sms
from kindly import formatting, records
from kindly.contact_policy import opted_out
from kindly.db import session_scope
from kindly.models import Account, Conversation, Handoff, Promise, utcnow
from kindly.settings import settings
from kindly.texts import say


def promise_summary(promise: Promise, language: str) -> str:
    money = lambda amount: formatting.money(amount, promise.currency, language)  # noqa: E731
    day = formatting.day(promise.due_date, language)
    if promise.plan_type == "installment":
        plan = say("plan_installment", language, count=promise.installments, amount=money(promise.amount), date=day, total=money(promise.total))
    else:
        plan = say("plan_single", language, amount=money(promise.amount), date=day)
    return say("promise_summary_sms", language, "sms", plan=plan, reference=promise.id)


def promise_confirmation(conversation_id: str) -> str | None:
    """The SMS summary of the promise made in this conversation, if there is one and SMS is allowed."""
    with session_scope() as session:
        promise = session.scalar(select(Promise).where(Promise.conversation_id == conversation_id))
        if promise is None:
            return None
        account = session.get(Account, promise.account_id)
        if opted_out(session, account, "sms"):
            return None
        return promise_summary(promise, session.get(Conversation, conversation_id).language)


def text_promise_confirmation(conversation_id: str) -> None:
    """After a voice call, the customer gets the promise in writing. The promise is already stored, so a
    Twilio failure never breaks the call: the worker sends it later."""
    summary = promise_confirmation(conversation_id)
    if summary:
        with session_scope() as session:
            account_id = session.get(Conversation, conversation_id).account_id
            phone = session.get(Account, account_id).phone
        try:
            send_sms(phone, summary)
        except TWILIO_ERRORS as error:
            logger.error("promise confirmation SMS for conversation %s failed, to be sent again: %s", conversation_id, error)
            send_later("confirmation", account_id, conversation_id, None, "the promise's SMS confirmation")


def agent_notice(handoff_id: int, our: Optional[str]) -> tuple[Optional[str], str]:
    """The agent line of the number the customer used (`our`), and the notice for it."""
    with session_scope() as session:
        handoff = session.get(Handoff, handoff_id)
        body = (
            f"Kindly handoff #{handoff.id} ({handoff.reason}, {handoff.channel}): {handoff.summary} "
            f"Console: {settings.public_base_url}/console/handoffs/{handoff.id}"
        )
        return our_number(session, our).agent_line, body[:1500]


def notify_agent_of_handoff(handoff_id: int, our: Optional[str] = None) -> None:
    agent_line, body = agent_notice(handoff_id, our)
    if agent_line:
        try:
            send_sms(agent_line, body)
        except TWILIO_ERRORS as error:
            # The handoff is stored and shows in the console queue meanwhile.
            logger.error("agent notification for handoff %s failed, to be sent again: %s", handoff_id, error)
            with session_scope() as session:
                handoff = session.get(Handoff, handoff_id)
                account_id, conversation_id = handoff.account_id, handoff.conversation_id
            send_later("agent_notice", account_id, conversation_id, handoff_id, our or "")


def send_later(kind: str, account_id: int, conversation_id: str, handoff_id: Optional[int], note: str) -> None:
    """A follow-up due now, for the worker. An agent notice's note is our number the customer used."""
    with session_scope() as session:
        records.create_follow_up(session, session.get(Account, account_id), conversation_id, kind, None, note, due_at=utcnow(),
                                 handoff_id=handoff_id)
