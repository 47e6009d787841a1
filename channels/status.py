"""Twilio status callbacks: what became of each call and message we placed."""
from fastapi import APIRouter, Depends, Response
from sqlalchemy import select

from channels.twilio_edge import signed_form
from kindly.db import session_scope
from kindly.models import ContactAttempt

router = APIRouter(prefix="/twilio")

FINAL_CALL_OUTCOMES = {"no-answer": "no_answer", "busy": "busy", "failed": "failed", "canceled": "canceled"}


@router.post("/status", status_code=204)
def status_callback(form: dict = Depends(signed_form)) -> Response:
    sid = form.get("CallSid") or form.get("MessageSid")
    with session_scope() as session:
        attempt = session.scalar(select(ContactAttempt).where(ContactAttempt.external_ref == sid))
        if attempt is not None:
            call_status = form.get("CallStatus")
            if call_status in FINAL_CALL_OUTCOMES:
                attempt.outcome, attempt.connected = FINAL_CALL_OUTCOMES[call_status], False
            elif call_status == "completed" and attempt.outcome in ("initiated", "ringing"):
                attempt.outcome = "completed"
            elif form.get("MessageStatus"):
                attempt.outcome = form["MessageStatus"]
    return Response(status_code=204)
