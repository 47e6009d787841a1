"""Follow-ups to what happened in a conversation that reach beyond it: the promise confirmation by SMS and
the agent's SMS notice of a handoff."""
from sqlalchemy import select

from channels.twilio_edge import TWILIO_ERRORS, logger, our_number, send_sms
from kindly import formatting
from kindly.contact_policy import opted_out
from kindly.db import session_scope
from kindly.models import Account, Conversation, Handoff, Promise
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
    Twilio failure here is logged and never breaks the call."""
    summary = promise_confirmation(conversation_id)
    if summary:
        with session_scope() as session:
            phone = session.get(Account, session.get(Conversation, conversation_id).account_id).phone
        try:
            send_sms(phone, summary)
        except TWILIO_ERRORS as error:
            logger.error("promise confirmation SMS for conversation %s failed: %s", conversation_id, error)


def notify_agent_of_handoff(handoff_id: int, our: str | None = None) -> None:
    with session_scope() as session:
        handoff = session.get(Handoff, handoff_id)
        agent_line = our_number(session, our).agent_line
        body = (
            f"Kindly handoff #{handoff.id} ({handoff.reason}, {handoff.channel}): {handoff.summary} "
            f"Console: {settings.public_base_url}/console/handoffs/{handoff.id}"
        )
    if agent_line:
        try:
            send_sms(agent_line, body[:1500])
        except TWILIO_ERRORS as error:
            # The handoff is stored and shows in the console queue either way.
            logger.error("agent notification for handoff %s failed: %s", handoff_id, error)
