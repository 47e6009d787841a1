"""When the bot cannot answer a webhook: the engine or the action server is down, a timeout, a locked or read-only
database. The customer still gets TwiML at once, in their language: an apology with the callback number, and
on a call a transfer to the agent line. A handoff (`bot_failure`) is recorded when the database takes it."""
import logging
from dataclasses import dataclass
from typing import Optional
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import Dial, VoiceResponse

from channels.conversation import EngineUnavailable
from channels.outcomes import notify_agent_of_handoff
from channels.twilio_edge import SAY_LANGUAGES, default_number, our_number, voice_for
from kindly import records
from kindly.db import session_scope
from kindly.models import Account, Conversation, PhoneNumber, TranscriptTurn
from kindly.settings import settings
from kindly.texts import LANGUAGES, say

logger = logging.getLogger("kindly.failures")


@dataclass
class Failure:
    language: Optional[str]  # None when the database could not tell whose conversation it was: both are used
    number: PhoneNumber
    conversation_id: Optional[str] = None
    handoff_id: Optional[int] = None

    def apology(self, key: str, channel: str) -> list[tuple[str, str]]:
        """(language, text) in the customer's language, or in each language when it is unknown."""
        return [(language, say(key, language, channel)) for language in ([self.language] if self.language else LANGUAGES)]


def voice_answer(form: dict, error: Exception, account_id: Optional[int] = None) -> str:
    """The caller hears the apology and is put through to the agent line (with the handoff's whisper when it
    was recorded); a number without an agent line gives the callback number and hangs up."""
    failure = _record(form, error, "voice", account_id)
    response = VoiceResponse()
    agent_line = failure.number.agent_line
    for language, text in failure.apology("failure_apology_transfer" if agent_line else "failure_apology", "voice"):
        response.say(text, voice=voice_for(failure.number, language), language=SAY_LANGUAGES[language])
    if not agent_line:
        response.hangup()
        return str(response)
    if failure.handoff_id is None:
        dial = Dial(timeout=25)
        dial.number(agent_line)
    else:
        dial = Dial(action=_url("/twilio/voice/dial-status", conversation=failure.conversation_id, handoff=failure.handoff_id), timeout=25)
        dial.number(agent_line, url=_url("/twilio/voice/whisper", handoff=failure.handoff_id))
    response.append(dial)
    return str(response)


def sms_answer(form: dict, error: Exception) -> str:
    failure = _record(form, error, "sms")
    if failure.handoff_id is not None:
        notify_agent_of_handoff(failure.handoff_id, form.get("To"))
    response = MessagingResponse()
    response.message(" / ".join(text for _language, text in failure.apology("failure_apology", "sms")))
    return str(response)


def _url(path: str, **params) -> str:
    return f"{settings.public_base_url}{path}?{urlencode(params)}"


def _record(form: dict, error: Exception, channel: str, account_id: Optional[int] = None) -> Failure:
    """Whose conversation failed, and the bot_failure handoff on it. After a database error no write is tried:
    the database has just refused one, and each try would wait for the lock again."""
    # The engine's failures are known and described by their message; anything else gets its traceback.
    logger.error("%s webhook %s failed: %r", channel, form.get("CallSid") or form.get("MessageSid"), error,
                 exc_info=None if isinstance(error, EngineUnavailable) else error)
    inbound = channel == "sms" or form.get("Direction", "inbound") == "inbound"
    customer, ours = (form.get("From"), form.get("To")) if inbound else (form.get("To"), form.get("From"))
    try:
        with session_scope() as session:
            conversation = _failed_conversation(session, channel, form, customer)
            if conversation is not None:
                account = session.get(Account, conversation.account_id)
            elif account_id is not None:
                account = session.get(Account, account_id)
            else:
                account = session.scalar(select(Account).where(Account.phone == (customer or "")).order_by(Account.id))
            failure = Failure(
                language=account.language if account else None,
                number=our_number(session, ours),
                conversation_id=conversation.id if conversation and conversation.ended_at is None else None,
            )
    except SQLAlchemyError as db_error:
        logger.error("nothing could be read about the failed %s webhook: %r", channel, db_error)
        return Failure(language=None, number=default_number(ours))
    if failure.conversation_id is not None and not isinstance(error, SQLAlchemyError):
        try:
            failure.handoff_id = _hand_off(failure.conversation_id)
        except SQLAlchemyError as db_error:
            logger.error("the bot_failure handoff of conversation %s could not be recorded: %r", failure.conversation_id, db_error)
    return failure


def _hand_off(conversation_id: str) -> int:
    with session_scope() as session:
        conversation = session.get(Conversation, conversation_id)
        last_said = session.scalar(
            select(TranscriptTurn.text)
            .where(TranscriptTurn.conversation_id == conversation_id, TranscriptTurn.role == "user")
            .order_by(TranscriptTurn.id.desc())
        )
        account = session.get(Account, conversation.account_id)
        return records.create_handoff(session, account, conversation, "bot_failure", last_said or "").id


def _failed_conversation(session, channel: str, form: dict, customer: Optional[str]) -> Optional[Conversation]:
    """A call's conversation is keyed by its CallSid; a customer has one SMS conversation in progress."""
    if channel == "voice":
        return session.scalar(select(Conversation).where(Conversation.channel == "voice", Conversation.external_ref == form.get("CallSid", "")))
    return session.scalar(
        select(Conversation)
        .join(Account, Account.id == Conversation.account_id)
        .where(Account.phone == (customer or ""), Conversation.channel == "sms", Conversation.ended_at.is_(None))
        .order_by(Conversation.started_at.desc())
    )
