"""Twilio Voice: `/twilio/voice` answers a call, `/twilio/voice/turn` takes each answer from <Gather>.
The conversation is keyed by CallSid; the account comes from the outbound call or the caller's number."""
from datetime import timedelta
from typing import Optional
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select
from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

from channels import failures
from channels.conversation import START_TEXT, BotReply, record_turn, send_message, start_conversation
from channels.outcomes import text_promise_confirmation
from channels.twilio_edge import SAY_LANGUAGES, SPEECH_LANGUAGES, our_number, signed_form, voice_for
from channels.twilio_receipts import answer_once, twilio_id, twiml
from gateway.api import RowId
from kindly import follow_through, records
from kindly.db import session_scope
from kindly.models import Account, ContactAttempt, Conversation, Handoff, PhoneNumber, TranscriptTurn
from kindly.payments import local_today
from kindly.settings import settings
from kindly.texts import say

router = APIRouter(prefix="/twilio")

ANSWERING_MACHINE = {"machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax"}
MAX_SILENCES = 2
# Speech hints by what the bot is waiting for.
HINTS = {
    "right_party": "yes, no, speaking, that's me, wrong number, not here, call back later, 是我, 不是, 打错了",
    "verify": "$OOV_CLASS_FULLDATE, $OOV_CLASS_DIGIT_SEQUENCE",
    "options": "$OOV_CLASS_CURRENCY, installments, 3 months, 6 months, 12 months, minimum, pay in full, 分期",
    "confirm": "yes, no, that's right, 对, 可以, 不对",
    "callback": "tomorrow, this evening, after 6, 明天, 晚上",
}


def _url(path: str, **params) -> str:
    return f"{settings.public_base_url}{path}?{urlencode(params)}"


def _common(account: Account) -> dict:
    return {"name": account.name}


def dial_agent(agent_line: str, conversation_id: str, handoff_id: int) -> Dial:
    """The transfer to a colleague, with a whisper of the case; dial_finished hears how it went."""
    dial = Dial(action=_url("/twilio/voice/dial-status", conversation=conversation_id, handoff=handoff_id), timeout=25)
    dial.number(agent_line, url=_url("/twilio/voice/whisper", handoff=handoff_id))
    return dial


def render(reply: BotReply, language: str, number: PhoneNumber, turn: int, lead: tuple[str, ...] = (), silences: int = 0) -> str:
    """TwiML for what the bot says next: a <Gather> for the answer, a <Dial> to an agent, or <Hangup>."""
    response = VoiceResponse()
    voice, say_language = voice_for(number, language), SAY_LANGUAGES[language]
    texts = [*lead, *reply.messages]
    if reply.handoff_id and reply.stage == "handoff":
        for text in texts:
            response.say(text, voice=voice, language=say_language)
        if number.agent_line:
            response.append(dial_agent(number.agent_line, reply.conversation_id, reply.handoff_id))
        else:
            # No agent line on this number, and no queue anyone serves: a colleague calls back (kindly.tasks).
            with session_scope() as session:
                follow_through.schedule_agent_callback(session, session.get(Handoff, reply.handoff_id))
            text = say("agent_unavailable", language, "voice")
            record_turn(reply.conversation_id, "bot", text)
            response.say(text, voice=voice, language=say_language)
            response.hangup()
        return str(response)
    if reply.ended:
        for text in texts:
            response.say(text, voice=voice, language=say_language)
        response.hangup()
        return str(response)
    gather = Gather(
        input="speech dtmf",
        action=_url("/twilio/voice/turn", conversation=reply.conversation_id, turn=turn, silences=silences),
        method="POST",
        language=SPEECH_LANGUAGES[language],
        speech_timeout="auto",
        timeout=6,
        finish_on_key="#",
        action_on_empty_result=True,
        barge_in=True,
        hints=HINTS.get(reply.stage, "yes, no"),
    )
    for text in texts:
        gather.say(text, voice=voice, language=say_language)
    response.append(gather)
    return str(response)


def _hang_up_with(texts: list[str], language: str, number: PhoneNumber) -> str:
    response = VoiceResponse()
    for text in texts:
        response.say(text, voice=voice_for(number, language), language=SAY_LANGUAGES[language])
    response.hangup()
    return str(response)


def _find_account(session, account_id: Optional[int], phone: str) -> Optional[Account]:
    if account_id is not None:
        return session.get(Account, account_id)
    return session.scalar(select(Account).where(Account.phone == phone).order_by(Account.id))


@router.post("/voice")
def call_answered(form: dict = Depends(signed_form), account_id: Optional[RowId] = None):
    call_sid = twilio_id(form, "CallSid")
    try:
        return answer_once(f"voice:{call_sid}:answer", lambda: _answer_call(form, account_id))
    except Exception as error:
        return twiml(failures.voice_answer(form, error, account_id))


def _answer_call(form: dict, account_id: Optional[int]) -> str:
    inbound = form.get("Direction", "inbound") == "inbound"
    customer, ours = (form.get("From", ""), form.get("To")) if inbound else (form.get("To", ""), form.get("From"))
    with session_scope() as session:
        account = _find_account(session, account_id, customer)
        number = our_number(session, ours)
        if account is None:
            text = " ".join(say("unknown_caller", lang, "voice") for lang in ("en", "zh"))
            return _hang_up_with([text], "en", number)
        account_id, language = account.id, account.language
        machine = form.get("AnsweredBy") in ANSWERING_MACHINE
        handoff, _ = records.handoff_holding(session, account) if inbound else (None, False)
        if handoff is not None:
            # One thread per customer: a person holds it, so the caller goes straight to them.
            records.add_customer_message(session, handoff, "(called in)", "voice")
            text = say("handoff_voice", language)
            reply = BotReply(handoff.conversation_id, messages=[text], stage="handoff", handoff_id=handoff.id)
            return render(reply, language, number, turn=1)
        # Only our outbound calls are contact attempts (reserved by the contact policy, found by CallSid); an
        # inbound call is the customer's and is never one.
        attempt = None if inbound else session.scalar(select(ContactAttempt).where(ContactAttempt.external_ref == form.get("CallSid")))
        if attempt is not None:
            attempt.outcome, attempt.connected = ("voicemail", False) if machine else ("answered", True)
    conversation_id = start_conversation(account_id, "voice", "inbound" if inbound else "outbound", external_ref=form.get("CallSid"))
    if attempt is not None:
        with session_scope() as session:
            session.get(ContactAttempt, attempt.id).conversation_id = conversation_id
    if machine:
        # A limited-content message (12 CFR 1006.2(j)): who we are and how to call back, never a word about a debt.
        text = say("voicemail", language, contact_person=settings.contact_person_in(language))
        record_turn(conversation_id, "bot", text)
        with session_scope() as session:
            records.end_conversation(session, session.get(Conversation, conversation_id), "voicemail")
        return _hang_up_with([text], language, number)
    return render(send_message(conversation_id, START_TEXT), language, number, turn=1)


@router.post("/voice/turn")
def caller_answered(
    form: dict = Depends(signed_form),
    conversation: str = Query(..., max_length=32),
    turn: int = Query(..., ge=0, le=10_000),
    silences: int = Query(0, ge=0, le=MAX_SILENCES),
):
    key = f"voice:{twilio_id(form, 'CallSid')}:{conversation}:{turn}:{silences}"
    try:
        return answer_once(key, lambda: _take_turn(form, conversation, turn, silences))
    except Exception as error:
        return twiml(failures.voice_answer(form, error))


def _take_turn(form: dict, conversation_id: str, turn: int, silences: int) -> str:
    with session_scope() as session:
        conversation = session.get(Conversation, conversation_id)
        if conversation is None or conversation.external_ref != form.get("CallSid"):
            return _hang_up_with([], "en", PhoneNumber())
        account = session.get(Account, conversation.account_id)
        language, common, stage = conversation.language, _common(account), conversation.stage
        number = our_number(session, form.get("To") if conversation.direction == "inbound" else form.get("From"))
    said = (form.get("Digits") or form.get("SpeechResult") or "").strip()
    if not said:
        if silences >= MAX_SILENCES:
            with session_scope() as session:
                conversation = session.get(Conversation, conversation_id)
                records.end_conversation(session, conversation, "no_commitment")
                # "We'll try again another time": a call the next day, inside the window and the contact policy.
                account = session.get(Account, conversation.account_id)
                records.create_follow_up(session, account, conversation_id, "callback", local_today(account) + timedelta(days=1),
                                         "no one spoke on the call: calling again")
            text = say("silence_close", language, **common)
            record_turn(conversation_id, "bot", text)
            return _hang_up_with([text], language, number)
        with session_scope() as session:
            last_said = _last_bot_turns(session, conversation_id)  # said again after the "didn't hear" line
        reply = BotReply(conversation_id, messages=last_said, stage=stage)
        return render(reply, language, number, turn, lead=(say("silence_prompt", language),), silences=silences + 1)
    reply = send_message(conversation_id, said)
    if reply.ended and reply.disposition == "promise_to_pay":
        text_promise_confirmation(conversation_id)
    return render(reply, language, number, turn + 1)


def _last_bot_turns(session, conversation_id: str) -> list[str]:
    turns = list(session.scalars(select(TranscriptTurn).where(TranscriptTurn.conversation_id == conversation_id).order_by(TranscriptTurn.id.desc()).limit(6)))
    last = []
    for t in turns:
        if t.role != "bot":
            break
        last.insert(0, t.text)
    return last


@router.post("/voice/whisper")
def whisper(handoff: RowId, form: dict = Depends(signed_form)):
    """What the agent hears before the call connects."""
    with session_scope() as session:
        record = session.get(Handoff, handoff)
        summary = record.summary if record else "Kindly handoff: no details found."
    response = VoiceResponse()
    response.say(f"Kindly handoff. {summary}", voice="Polly.Joanna", language="en-US")
    return twiml(str(response))


@router.post("/voice/dial-status")
def dial_finished(handoff: RowId, form: dict = Depends(signed_form), conversation: str = Query(..., max_length=32)):
    with session_scope() as session:
        record = session.get(Handoff, handoff)
        convo = session.get(Conversation, conversation)
        if record is None or convo is None or record.conversation_id != convo.id:
            return twiml(_hang_up_with([], "en", our_number(session, None)))
        account = session.get(Account, convo.account_id)
        number = our_number(session, form.get("To") if convo.direction == "inbound" else form.get("From"))
        if form.get("DialCallStatus") == "completed":
            record.status = "claimed"
            return twiml(_hang_up_with([], "en", number))
        # Nobody answered: the handoff stays waiting and a colleague calls back (kindly.tasks places the call).
        follow_through.schedule_agent_callback(session, record)
        language, common = convo.language, _common(account)
    text = say("agent_unavailable", language, **common)
    record_turn(conversation, "bot", text)
    return twiml(_hang_up_with([text], language, number))
