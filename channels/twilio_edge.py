"""Everything that touches Twilio itself: webhook signatures, the REST client, numbers and voices."""
import logging
from functools import lru_cache
from typing import Optional

import requests
from fastapi import HTTPException, Request
from sqlalchemy.orm import Session
from twilio.base.exceptions import TwilioException
from twilio.request_validator import RequestValidator
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from kindly.models import PhoneNumber
from kindly.settings import settings

logger = logging.getLogger("kindly.twilio")
# What a Twilio REST call can raise: Twilio's own errors, and the network's.
TWILIO_ERRORS = (TwilioException, requests.RequestException)
SPEECH_LANGUAGES = {"en": "en-US", "zh": "cmn-Hans-CN"}
SAY_LANGUAGES = {"en": "en-US", "zh": "cmn-CN"}


def public_url(request: Request) -> str:
    """The URL Twilio signed: our public base URL, the path and the query string, exactly as requested."""
    query = request.url.query
    return f"{settings.public_base_url}{request.url.path}" + (f"?{query}" if query else "")


FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


async def signed_form(request: Request) -> dict:
    """The webhook's form parameters, or 403 when X-Twilio-Signature does not match them. Twilio posts only
    url-encoded forms: any other body (multipart above all) is refused with 415 before it is parsed."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != FORM_CONTENT_TYPE:
        raise HTTPException(status_code=415, detail=f"a Twilio webhook is {FORM_CONTENT_TYPE}")
    form = {key: value for key, value in (await request.form()).multi_items()}
    signature = request.headers.get("X-Twilio-Signature", "")
    if not RequestValidator(settings.twilio_auth_token).validate(public_url(request), form, signature):
        raise HTTPException(status_code=403, detail="invalid Twilio signature")
    return form


@lru_cache(maxsize=1)
def rest_client() -> Client:
    client = Client(settings.twilio_account_sid, settings.twilio_auth_token, http_client=TwilioHttpClient(timeout=15))
    # TWILIO_API_BASE_URL points every REST call at the simulator in development and tests.
    client.api.base_url = settings.twilio_api_base_url
    return client


def our_number(session: Session, number: Optional[str]) -> PhoneNumber:
    """The configuration of one of our numbers; unconfigured numbers get the defaults."""
    number = number or settings.twilio_phone_number
    return session.get(PhoneNumber, number) or default_number(number)


def default_number(number: Optional[str]) -> PhoneNumber:
    """How a number nobody configured behaves (and any number, when the database cannot be read)."""
    return PhoneNumber(
        number=number or settings.twilio_phone_number, agent_line=settings.agent_line, voice_en="Polly.Joanna", voice_zh="Polly.Zhiyu"
    )


def voice_for(config: PhoneNumber, language: str) -> str:
    return config.voice_zh if language == "zh" else config.voice_en


def send_sms(to: str, body: str, from_: Optional[str] = None) -> str:
    message = rest_client().messages.create(
        to=to, from_=from_ or settings.twilio_phone_number, body=body,
        status_callback=f"{settings.public_base_url}/twilio/status",
    )
    return message.sid
