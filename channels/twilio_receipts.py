"""Twilio retries a webhook it got no answer to. The first answer is kept and given again, so a retry never
adds a turn or a promise."""
from typing import Callable

from fastapi import Response
from sqlalchemy.exc import IntegrityError

from kindly.db import session_scope
from kindly.models import WebhookReceipt


def twiml(body: str) -> Response:
    return Response(content=body, media_type="application/xml")


def answer_once(key: str, build: Callable[[], str]) -> Response:
    with session_scope() as session:
        seen = session.get(WebhookReceipt, key)
        if seen is not None:
            return twiml(seen.response)
    body = build()
    try:
        with session_scope() as session:
            session.add(WebhookReceipt(key=key, response=body))
    except IntegrityError:
        pass  # a concurrent retry stored it first; both carry the same turn's answer
    return twiml(body)
