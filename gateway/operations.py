"""The REST API's actions on the outside world: outbound contacts, agents' replies and resolutions, and the
configuration of our Twilio numbers."""
from datetime import datetime, timezone

from fastapi import APIRouter, Depends, HTTPException, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from channels.agent_replies import cancel_held_replies, hold_agent_reply, held_replies, send_agent_reply
from channels.outbound import place_call, send_opening_sms
from channels.twilio_edge import TWILIO_ERRORS
from gateway.api import RowId, db, get_account_or_404
from gateway.auth import require_admin
from gateway.schemas import (
    AgentMessageIn,
    ContactIn,
    ContactOut,
    HandoffDetailOut,
    NumberIn,
    NumberOut,
    ResolveIn,
    e164,
)
from kindly import records
from kindly.contact_policy import Refusal, reserve_contact
from kindly.db import session_scope
from kindly.models import Conversation, Handoff, HandoffMessage, PhoneNumber, TranscriptTurn, as_utc, utcnow

router = APIRouter(prefix="/api", dependencies=[Depends(require_admin)])


@router.post("/contacts", status_code=201, response_model=ContactOut)
def contact_account(body: ContactIn) -> ContactOut:
    with session_scope() as session:
        get_account_or_404(session, body.account_id)
    reserved = reserve_contact(body.account_id, body.channel)
    if isinstance(reserved, Refusal):
        raise HTTPException(status_code=409, detail={"rule": reserved.rule, "message": reserved.message})
    try:
        attempt = place_call(reserved) if body.channel == "voice" else send_opening_sms(reserved)
    except TWILIO_ERRORS as error:
        raise HTTPException(status_code=502, detail=f"Twilio refused the request: {error}") from error
    return ContactOut.model_validate(attempt, from_attributes=True)


def _handoff_or_404(session: Session, handoff_id: int) -> Handoff:
    handoff = session.get(Handoff, handoff_id)
    if handoff is None:
        raise HTTPException(status_code=404, detail=f"handoff {handoff_id} not found")
    return handoff


def handoff_detail(session: Session, handoff: Handoff) -> HandoffDetailOut:
    messages = session.scalars(select(HandoffMessage).where(HandoffMessage.handoff_id == handoff.id).order_by(HandoffMessage.id))
    turns = session.scalars(select(TranscriptTurn).where(TranscriptTurn.conversation_id == handoff.conversation_id).order_by(TranscriptTurn.id))
    return HandoffDetailOut(
        **{name: getattr(handoff, name) for name in HandoffDetailOut.model_fields if name not in ("messages", "transcript", "held_replies")},
        messages=[{"role": m.role, "text": m.text, "at": m.at} for m in messages],
        transcript=[{"role": t.role, "text": t.text, "at": t.at} for t in turns],
        held_replies=[{"follow_up_id": f.id, "text": f.note, "sends_at": as_utc(f.due_at)} for f in held_replies(session, handoff.id)],
    )


@router.get("/handoffs/{handoff_id}", response_model=HandoffDetailOut)
def get_handoff(handoff_id: RowId, session: Session = Depends(db)) -> HandoffDetailOut:
    return handoff_detail(session, _handoff_or_404(session, handoff_id))


@router.post("/handoffs/{handoff_id}/messages", status_code=201, response_model=HandoffDetailOut,
             responses={202: {"description": "held for the calling window: see held_replies"}})
def agent_reply(handoff_id: RowId, body: AgentMessageIn, response: Response) -> HandoffDetailOut:
    """Sent now (201), or, outside the calling window, held and sent at its opening (202, `held_replies`)."""
    with session_scope() as session:
        if _handoff_or_404(session, handoff_id).status == "resolved":
            raise HTTPException(status_code=409, detail="the handoff is resolved")
    now = datetime.now(timezone.utc)
    try:
        refusal = send_agent_reply(handoff_id, body.text, now)
    except TWILIO_ERRORS as error:
        raise HTTPException(status_code=502, detail=f"Twilio refused the message: {error}") from error
    if refusal and refusal.rule == "calling_window":
        refusal = hold_agent_reply(handoff_id, body.text, now)
        response.status_code = 202
    if refusal:
        raise HTTPException(status_code=409, detail={"rule": refusal.rule, "message": refusal.message})
    with session_scope() as session:
        return handoff_detail(session, session.get(Handoff, handoff_id))


@router.post("/handoffs/{handoff_id}/resolve", response_model=HandoffDetailOut)
def resolve_handoff(handoff_id: RowId, body: ResolveIn) -> HandoffDetailOut:
    with session_scope() as session:
        handoff = _handoff_or_404(session, handoff_id)
        handoff.status, handoff.disposition, handoff.note = "resolved", body.disposition, body.note
        handoff.resume_bot, handoff.resolved_at = body.resume_bot, utcnow()
        cancel_held_replies(session, handoff_id, f"the handoff was resolved ({body.disposition})")
        session.get(Conversation, handoff.conversation_id).disposition = body.disposition
        records.audit(session, "agent", "handoff_resolved", "handoff", handoff_id, disposition=body.disposition)
        session.flush()
        return handoff_detail(session, handoff)


@router.get("/numbers", response_model=list[NumberOut])
def list_numbers(session: Session = Depends(db)) -> list[NumberOut]:
    return [NumberOut.model_validate(n, from_attributes=True) for n in session.scalars(select(PhoneNumber).order_by(PhoneNumber.number))]


@router.put("/numbers/{number}", response_model=NumberOut)
def configure_number(number: str, body: NumberIn) -> NumberOut:
    try:
        number = e164(number)
    except ValueError as error:
        raise HTTPException(status_code=422, detail=str(error)) from error
    with session_scope() as session:
        config = session.get(PhoneNumber, number) or PhoneNumber(number=number)
        for field, value in body.model_dump().items():
            setattr(config, field, value)
        session.add(config)
        records.audit(session, "admin", "number_configured", "phone_number", number)
        session.flush()
        return NumberOut.model_validate(config, from_attributes=True)
