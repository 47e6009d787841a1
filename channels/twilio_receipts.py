"""Twilio retries a webhook it got no answer to, and anything between Twilio and us can replay one. Each request
that carries Twilio's id of it (MessageSid; CallSid and the Gather's place in the call) claims a receipt under
that id before its turn runs. A copy that finds the receipt taken waits for the first copy's answer and gives
it again: it never runs the turn a second time."""
import logging
import time
from datetime import timedelta
from typing import Callable

from fastapi import HTTPException, Response
from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from kindly.db import session_scope
from kindly.models import WebhookReceipt, utcnow

logger = logging.getLogger("kindly.twilio")

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response />'
# A copy waits this long for the first copy's answer, then answers with empty TwiML (Twilio waits 15 s).
WAIT_SECONDS = 5.0
POLL_SECONDS = 0.2
# A receipt still pending after this belongs to a turn whose process died; the next copy takes it over.
ABANDONED_AFTER = timedelta(seconds=60)


def twiml(body: str) -> Response:
    return Response(content=body, media_type="application/xml")


def twilio_id(form: dict, name: str) -> str:
    """Twilio's id of the message or call (MessageSid, CallSid). Twilio always sends it; without it a retry can't
    be told from a new request, and a signed request re-split to hide it could run a turn twice: 400."""
    value = form.get(name)
    if not value:
        raise HTTPException(status_code=400, detail=f"{name} is required")
    return value


def answer_once(key: str, build: Callable[[], str]) -> Response:
    """build()'s TwiML, once per key. When build() fails, the receipt is given up and the error goes on: a failure
    is never the stored answer, and Twilio's retry runs the turn."""
    with session_scope() as session:
        seen = session.get(WebhookReceipt, key)
        if seen is not None and seen.state == "done":
            return twiml(seen.response)  # a retry after the answer: no write needed
    if not _claim(key):
        return twiml(_first_answer(key))
    try:
        body = build()
    except Exception:
        _give_up(key)
        raise
    try:
        with session_scope() as session:
            session.execute(update(WebhookReceipt).where(WebhookReceipt.key == key).values(state="done", response=body))
    except SQLAlchemyError as error:
        # The turn has run; the customer gets its answer even if it cannot be kept for a retry.
        logger.error("webhook %s answered but its receipt could not be stored: %s", key, error)
    return twiml(body)


def _claim(key: str) -> bool:
    """True when this copy is the one to run the turn."""
    try:
        with session_scope() as session:
            session.add(WebhookReceipt(key=key, state="pending"))
        return True
    except IntegrityError:
        pass
    with session_scope() as session:
        taken_over = session.execute(
            update(WebhookReceipt)
            .where(WebhookReceipt.key == key, WebhookReceipt.state == "pending", WebhookReceipt.at < utcnow() - ABANDONED_AFTER)
            .values(at=utcnow())
        ).rowcount
    return taken_over == 1


def _first_answer(key: str) -> str:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        with session_scope() as session:
            receipt = session.get(WebhookReceipt, key)
            if receipt is not None and receipt.state == "done":
                return receipt.response
        # No receipt left: the first copy failed and has already answered with its apology.
        if receipt is None or time.monotonic() >= deadline:
            return EMPTY_TWIML
        time.sleep(POLL_SECONDS)


def _give_up(key: str) -> None:
    try:
        with session_scope() as session:
            session.execute(delete(WebhookReceipt).where(WebhookReceipt.key == key, WebhookReceipt.state == "pending"))
    except SQLAlchemyError as error:
        # Left pending, the receipt is taken over once it counts as abandoned.
        logger.error("pending receipt %s could not be removed: %s", key, error)
