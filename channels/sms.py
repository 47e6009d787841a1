"""Twilio SMS: `/twilio/sms` takes each inbound text and answers with TwiML <Message>.
Opt-out keywords are handled before the bot sees the text; while a person has the conversation, the bot is
paused and the customer's messages go to the handoff."""
from datetime import datetime, timedelta, timezone
from typing import Optional

from fastapi import APIRouter, Depends
from sqlalchemy import select
from twilio.twiml.messaging_response import MessagingResponse

from channels.conversation import clean_text, send_message, start_conversation
from channels.outcomes import notify_agent_of_handoff, promise_confirmation
from channels.twilio_edge import signed_form
from channels.twilio_receipts import answer_once
from kindly import records
from kindly.db import session_scope
from kindly.models import Account, Conversation, Handoff, HandoffMessage, OptOut, TranscriptTurn
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
    with session_scope() as session:
        account = session.scalar(select(Account).where(Account.phone == form.get("From", "")).order_by(Account.id))
        if account is None:
            common = {"bank": settings.bank_name, "callback": settings.callback_number}
            return messages(" / ".join(say("unknown_caller", lang, **common) for lang in ("en", "zh")))
        keyword_answer = _answer_keyword(session, account, body.strip().upper())
        if keyword_answer is not None:
            return keyword_answer
        if _opted_out(session, account):
            return messages()
        handoff = _handoff_in_progress(session, account)
        if handoff is not None:
            text = mask_text(clean_text(body), datetime.now(timezone.utc).date())
            session.add(HandoffMessage(handoff_id=handoff.id, role="user", text=text))
            session.add(TranscriptTurn(conversation_id=handoff.conversation_id, role="user", text=text))
            return messages()
        conversation = _open_conversation(session, account)
        account_id, conversation_id = account.id, conversation.id if conversation else None
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


def _opted_out(session, account: Account) -> bool:
    return session.scalar(select(OptOut.id).where(OptOut.account_id == account.id, OptOut.channel == "sms")) is not None


def _answer_keyword(session, account: Account, keyword: str) -> Optional[str]:
    """STOP, START and HELP are answered before the bot sees the text; None for any other message."""
    common = {"bank": settings.bank_name, "callback": settings.callback_number}
    opted_out = _opted_out(session, account)
    if keyword in STOP_WORDS:
        conversation = _open_conversation(session, account)
        records.record_opt_out(session, account, "sms", conversation.id if conversation else None)
        if conversation:
            records.end_conversation(session, conversation, "opted_out")
        # One confirmation only: a second STOP gets no answer.
        return messages() if opted_out else messages(say("sms_opted_out", account.language, **common))
    if keyword in START_WORDS and opted_out:
        records.remove_opt_out(session, account, "sms")
        return messages(say("sms_opted_in", account.language, **common))
    if keyword in HELP_WORDS:
        return messages(say("sms_help", account.language, **common))
    return None


def _handoff_in_progress(session, account: Account) -> Optional[Handoff]:
    """An SMS handoff a person still holds, or a closed one whose agent kept the bot out."""
    handoff = session.scalar(
        select(Handoff).where(Handoff.account_id == account.id, Handoff.channel == "sms").order_by(Handoff.id.desc())
    )
    if handoff is None or (handoff.status == "resolved" and handoff.resume_bot):
        return None
    if handoff.status == "resolved":
        handoff.status = "waiting"
    return handoff


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
