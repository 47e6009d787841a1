"""Outbound contacts: a call with machine detection, or the opening SMS, once the contact policy allows it."""
from urllib.parse import urlencode

from channels.conversation import START_TEXT, send_message, start_conversation
from channels.twilio_edge import rest_client, send_sms
from kindly.db import session_scope
from kindly.models import Account, ContactAttempt
from kindly.settings import settings


def place_call(account_id: int) -> ContactAttempt:
    with session_scope() as session:
        phone = session.get(Account, account_id).phone
    call = rest_client().calls.create(
        to=phone,
        from_=settings.twilio_phone_number,
        url=f"{settings.public_base_url}/twilio/voice?{urlencode({'account_id': account_id})}",
        status_callback=f"{settings.public_base_url}/twilio/status",
        status_callback_event=["initiated", "ringing", "answered", "completed"],
        machine_detection="DetectMessageEnd",
    )
    with session_scope() as session:
        attempt = ContactAttempt(account_id=account_id, channel="voice", direction="outbound", external_ref=call.sid)
        session.add(attempt)
    return attempt


def send_opening_sms(account_id: int) -> ContactAttempt:
    with session_scope() as session:
        phone = session.get(Account, account_id).phone
    conversation_id = start_conversation(account_id, "sms", "outbound")
    reply = send_message(conversation_id, START_TEXT)
    sid = send_sms(phone, "\n".join(reply.messages))
    with session_scope() as session:
        attempt = ContactAttempt(
            account_id=account_id, channel="sms", direction="outbound", external_ref=sid,
            conversation_id=conversation_id, outcome="sent", connected=True,
        )
        session.add(attempt)
    return attempt
