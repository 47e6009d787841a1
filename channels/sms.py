"""Twilio SMS: `/twilio/sms` takes each inbound text and answers with TwiML <Message>.
Opt-out keywords are handled before the bot sees the text; while a person has the conversation, the bot is
paused and the customer's messages go to the handoff."""
from datetime import datetime, timedelta, timezone
from typing import Optional

from fastapi import APIRouter, Depends, HTTPException
from sqlalchemy import select
from twilio.twiml.messaging_response import MessagingResponse

from channels import failures
from channels.conversation import clean_text, send_message, start_conversation
from channels.outcomes import notify_agent_of_handoff, promise_confirmation
from channels.twilio_edge import signed_form
from channels.twilio_receipts import answer_once, twilio_id, twiml
from kindly import records
from kindly.contact_policy import opted_out
from kindly.db import session_scope
from kindly.models import Account, Conversation, Handoff, as_utc
from kindly.privacy import mask_text
from kindly.settings import settings
from kindly.texts import say

router = APIRouter(prefix="/twilio")

STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "退订"}
START_WORDS = {"START", "UNSTOP", "YES", "订阅"}
HELP_WORDS = {"HELP", "INFO", "帮助"}


def messages(*texts: str) -> str:
    response = MessagingResponse()
    for text in texts:
        response.message(text)
    return str(response)


@router.post("/sms")
def sms_received(form: dict = Depends(signed_form)):
    message_sid = twilio_id(form, "MessageSid")
    try:
        return answer_once(f"sms:{message_sid}", lambda: _handle(form))
    except Exception as error:
        if form.get("Body", "").strip().upper() in STOP_WORDS:
            # An opt-out is never lost: an error status makes Twilio send it again until it is written down.
            raise HTTPException(status_code=503, detail="the opt-out could not be recorded yet, retry") from error
        return twiml(failures.sms_answer(form, error))


def _handle(form: dict) -> str:
    body = form.get("Body", "")
    with session_scope() as session:
        account = session.scalar(select(Account).where(Account.phone == form.get("From", "")).order_by(Account.id))
        if account is None:
            return messages(" / ".join(say("unknown_caller", lang, "sms") for lang in ("en", "zh")))
        keyword_answer = _answer_keyword(session, account, body.strip().upper())
        if keyword_answer is not None:
            return keyword_answer
        # One thread per customer: while a person holds it, on any channel, the text goes to them.
        handoff, reopened = records.handoff_holding(session, account)
        if handoff is None and opted_out(session, account, "sms"):
            handoff, reopened = _handoff_after_opt_out(session, account), True
        if handoff is not None:
            records.add_customer_message(session, handoff, mask_text(clean_text(body), datetime.now(timezone.utc).date()), "sms")
            handoff_id = handoff.id
        else:
            conversation = _open_conversation(session, account)
            handoff_id, account_id, conversation_id = None, account.id, conversation.id if conversation else None
    if handoff_id is not None:
        if reopened:
            notify_agent_of_handoff(handoff_id, form.get("To"))
        return messages()
    if conversation_id is None:
        conversation_id = start_conversation(account_id, "sms", "inbound", external_ref=form.get("MessageSid"))
    reply = send_message(conversation_id, body)
    texts = list(reply.messages)
    if reply.ended and reply.disposition == "promise_to_pay":
        summary = promise_confirmation(conversation_id)
        texts += [summary] if summary else []
    if reply.handoff_id and reply.stage == "handoff":
        notify_agent_of_handoff(reply.handoff_id, form.get("To"))
    return messages("\n".join(texts)) if texts else messages()


def _handoff_after_opt_out(session, account: Account) -> Handoff:
    """No automated answer after an opt-out, but what the customer writes still reaches a person."""
    conversation = Conversation(account_id=account.id, channel="sms", direction="inbound", language=account.language)
    session.add(conversation)
    session.flush()
    return records.create_handoff(session, account, conversation, "requested_human", "wrote after opting out of SMS")


def _answer_keyword(session, account: Account, keyword: str) -> Optional[str]:
    """STOP, START and HELP are answered before the bot sees the text; None for any other message."""
    already_out = opted_out(session, account, "sms")
    if keyword in STOP_WORDS:
        conversation = _open_conversation(session, account)
        records.record_opt_out(session, account, "sms", conversation.id if conversation else None)
        if conversation:
            records.end_conversation(session, conversation, "opted_out")
        # One confirmation only: a second STOP gets no answer.
        return messages() if already_out else messages(say("sms_opted_out", account.language, "sms"))
    if keyword in START_WORDS and already_out:
        records.remove_opt_out(session, account, "sms")
        return messages(say("sms_opted_in", account.language, "sms"))
    if keyword in HELP_WORDS:
        return messages(say("sms_help", account.language, "sms"))
    return None


def _open_conversation(session, account: Account) -> Optional[Conversation]:
    """The account's SMS conversation still in progress; one idle past the timeout is closed instead."""
    conversation = session.scalar(
        select(Conversation)
        .where(Conversation.account_id == account.id, Conversation.channel == "sms", Conversation.ended_at.is_(None))
        .order_by(Conversation.started_at.desc())
    )
    if conversation is None:
        return None
    idle_since = datetime.now(timezone.utc) - timedelta(hours=settings.sms_inactivity_hours)
    last = conversation.last_activity_at
    if as_utc(last) < idle_since:
        records.end_conversation(session, conversation, "no_commitment")
        return None
    return conversation
