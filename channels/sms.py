"""Twilio SMS: `/twilio/sms` takes each inbound text and answers with TwiML <Message>.
Opt-out keywords are handled before the bot sees the text; while a person has the conversation, the bot is
paused and the customer's messages go to the handoff."""
from datetime import datetime, timedelta, timezone
from typing import Optional

from fastapi import APIRouter, Depends
from sqlalchemy import select
from twilio.twiml.messaging_response import MessagingResponse

from channels.conversation import clean_text, record_turn, send_message, start_conversation
from channels.outcomes import notify_agent_of_handoff, promise_confirmation
from channels.twilio_edge import signed_form
from channels.twilio_receipts import answer_once
from kindly import records
from kindly.db import session_scope
from kindly.models import Account, Conversation, Handoff, HandoffMessage, OptOut
from kindly.privacy import mask_text
from kindly.settings import settings
from kindly.texts import say

router = APIRouter(prefix="/twilio")

STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "退订"}
START_WORDS = {"START", "UNSTOP", "YES"}
HELP_WORDS = {"HELP", "INFO", "帮助"}


def messages(*texts: str) -> str:
    response = MessagingResponse()
    for text in texts:
        response.message(text)
    return str(response)


@router.post("/sms")
def sms_received(form: dict = Depends(signed_form)):
    return answer_once(f"sms:{form.get('MessageSid', '')}", lambda: _handle(form))


def _handle(form: dict) -> str:
    body = form.get("Body", "")
    keyword = body.strip().upper()
    common = {"bank": settings.bank_name, "callback": settings.callback_number}
    with session_scope() as session:
        account = session.scalar(select(Account).where(Account.phone == form.get("From", "")).order_by(Account.id))
        if account is None:
            return messages(" / ".join(say("unknown_caller", lang, **common) for lang in ("en", "zh")))
        language = account.language
        opted_out = session.scalar(select(OptOut).where(OptOut.account_id == account.id, OptOut.channel == "sms"))
        if keyword in STOP_WORDS:
            conversation = _open_conversation(session, account)
            records.record_opt_out(session, account, "sms", conversation.id if conversation else None)
            if conversation:
                records.end_conversation(session, conversation, "opted_out")
            # One confirmation only: a second STOP gets no answer.
            return messages() if opted_out else messages(say("sms_opted_out", language, **common))
        if keyword in START_WORDS and opted_out:
            records.remove_opt_out(session, account, "sms")
            return messages(say("sms_opted_in", language, **common))
        if keyword in HELP_WORDS:
            return messages(say("sms_help", language, **common))
        if opted_out:
            return messages()
        handoff = session.scalar(
            select(Handoff)
            .where(Handoff.account_id == account.id, Handoff.channel == "sms")
            .where((Handoff.status != "resolved") | Handoff.resume_bot.is_(False))
            .order_by(Handoff.id.desc())
        )
        if handoff is not None:
            handoff.status = "waiting" if handoff.status == "resolved" else handoff.status
            text = mask_text(clean_text(body), datetime.now(timezone.utc).date())
            session.add(HandoffMessage(handoff_id=handoff.id, role="user", text=text))
            record_turn_later = (handoff.conversation_id, text)
        else:
            record_turn_later = None
            conversation = _open_conversation(session, account)
            conversation_id = conversation.id if conversation else None
            account_id = account.id
    if record_turn_later:
        record_turn(*record_turn_later)
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
    if (last if last.tzinfo else last.replace(tzinfo=timezone.utc)) < idle_since:
        records.end_conversation(session, conversation, "no_commitment")
        return None
    return conversation
