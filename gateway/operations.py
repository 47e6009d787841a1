"""The REST API's actions on the outside world: outbound contacts, agents' replies and resolutions, and the
configuration of our Twilio numbers."""
from fastapi import APIRouter, Depends, HTTPException
from sqlalchemy import select
from sqlalchemy.orm import Session

from channels.outbound import place_call, send_opening_sms
from channels.twilio_edge import TWILIO_ERRORS, send_sms
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
from kindly.contact_policy import Refusal, check_agent_reply, reserve_contact
from kindly.db import session_scope
from kindly.models import Account, Conversation, Handoff, HandoffMessage, PhoneNumber, TranscriptTurn, utcnow

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
        **{name: getattr(handoff, name) for name in HandoffDetailOut.model_fields if name not in ("messages", "transcript")},
        messages=[{"role": m.role, "text": m.text, "at": m.at} for m in messages],
        transcript=[{"role": t.role, "text": t.text, "at": t.at} for t in turns],
    )


@router.get("/handoffs/{handoff_id}", response_model=HandoffDetailOut)
def get_handoff(handoff_id: RowId, session: Session = Depends(db)) -> HandoffDetailOut:
    return handoff_detail(session, _handoff_or_404(session, handoff_id))


@router.post("/handoffs/{handoff_id}/messages", status_code=201, response_model=HandoffDetailOut)
def agent_reply(handoff_id: RowId, body: AgentMessageIn) -> HandoffDetailOut:
    with session_scope() as session:
        handoff = _handoff_or_404(session, handoff_id)
        if handoff.status == "resolved":
            raise HTTPException(status_code=409, detail="the handoff is resolved")
        account = session.get(Account, handoff.account_id)
        # Outside the window (and with no word from the customer in the last hour) the reply is refused; holding
        # it for the window is the follow-through worker's job (issue 8).
        refusal = check_agent_reply(session, account)
        if refusal:
            raise HTTPException(status_code=409, detail={"rule": refusal.rule, "message": refusal.message})
        phone = account.phone
    try:
        send_sms(phone, body.text)
    except TWILIO_ERRORS as error:
        raise HTTPException(status_code=502, detail=f"Twilio refused the message: {error}") from error
    with session_scope() as session:
        handoff = session.get(Handoff, handoff_id)
        handoff.status = "claimed"
        session.add(HandoffMessage(handoff_id=handoff_id, role="agent", text=body.text))
        session.add(TranscriptTurn(conversation_id=handoff.conversation_id, role="agent", text=body.text))
        records.audit(session, "agent", "handoff_reply", "handoff", handoff_id)
        session.flush()
        return handoff_detail(session, handoff)


@router.post("/handoffs/{handoff_id}/resolve", response_model=HandoffDetailOut)
def resolve_handoff(handoff_id: RowId, body: ResolveIn) -> HandoffDetailOut:
    with session_scope() as session:
        handoff = _handoff_or_404(session, handoff_id)
        handoff.status, handoff.disposition, handoff.note = "resolved", body.disposition, body.note
        handoff.resume_bot, handoff.resolved_at = body.resume_bot, utcnow()
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
