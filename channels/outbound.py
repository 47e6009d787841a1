"""Outbound contacts through Twilio's REST API, each for an attempt the contact policy has reserved
(kindly.contact_policy.reserve_contact): the bot's call, a call with given TwiML, the opening SMS, a text.
Twilio's answer updates the reserved row: its sid and "initiated" or "sent", or why it failed."""
from contextlib import contextmanager
from typing import Iterator, Optional
from urllib.parse import urlencode

from twilio.base.exceptions import TwilioRestException

from channels.conversation import START_TEXT, send_message, start_conversation
from channels.twilio_edge import rest_client, send_sms
from kindly.db import session_scope
from kindly.models import Account, ContactAttempt
from kindly.settings import settings


def place_call(reserved: ContactAttempt, twiml: Optional[str] = None) -> ContactAttempt:
    """The bot's call (with machine detection; the voice webhook answers it), or a call that plays `twiml`."""
    how = {"twiml": twiml} if twiml else {
        "url": f"{settings.public_base_url}/twilio/voice?{urlencode({'account_id': reserved.account_id})}",
        "machine_detection": "DetectMessageEnd",
    }
    phone = _phone(reserved)
    with _settled_on_failure(reserved):
        call = rest_client().calls.create(
            to=phone,
            from_=settings.twilio_phone_number,
            status_callback=f"{settings.public_base_url}/twilio/status",
            status_callback_event=["initiated", "ringing", "answered", "completed"],
            **how,
        )
    return _settle(reserved, "initiated", external_ref=call.sid)


def send_opening_sms(reserved: ContactAttempt) -> ContactAttempt:
    """Starts an SMS conversation: the bot's opening, sent by the REST API."""
    try:
        conversation_id = start_conversation(reserved.account_id, "sms", "outbound")
        reply = send_message(conversation_id, START_TEXT)
    except Exception:
        _settle(reserved, "failed")  # nothing was sent
        raise
    return send_text(reserved, "\n".join(reply.messages), conversation_id=conversation_id, connected=True)


def send_text(reserved: ContactAttempt, body: str, **fields) -> ContactAttempt:
    phone = _phone(reserved)
    with _settled_on_failure(reserved):
        sid = send_sms(phone, body)
    return _settle(reserved, "sent", external_ref=sid, **fields)


def _phone(reserved: ContactAttempt) -> str:
    with session_scope() as session:
        return session.get(Account, reserved.account_id).phone


@contextmanager
def _settled_on_failure(reserved: ContactAttempt) -> Iterator[None]:
    """Records a failed Twilio request on the reserved row, then lets the error through. Twilio refusing the
    request means nothing went out ("failed", no sid: not a call attempt); after any other failure Twilio may
    still have placed it ("unconfirmed": counted)."""
    try:
        yield
    except TwilioRestException:
        _settle(reserved, "failed")
        raise
    except Exception:
        _settle(reserved, "unconfirmed")
        raise


def _settle(reserved: ContactAttempt, outcome: str, **fields) -> ContactAttempt:
    with session_scope() as session:
        attempt = session.get(ContactAttempt, reserved.id)
        attempt.outcome = outcome
        for name, value in fields.items():
            setattr(attempt, name, value)
        session.flush()
        return attempt
