"""An agent's SMS to the customer of a handoff (POST /api/handoffs/{id}/messages, the console).

It goes at once when the contact policy allows it (kindly.contact_policy.check_agent_reply: inside the calling
window, or the customer wrote in the last hour). Outside the window it is held: a follow-up of kind
`agent_reply` (its note is the text) that the follow-through worker sends at the window's opening
(kindly/tasks.py), checking the policy again then. Resolving the handoff cancels what is still held."""
from datetime import datetime
from typing import Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from channels.twilio_edge import send_sms
from kindly import records
from kindly.contact_policy import Refusal, check_agent_reply, contact_zones
from kindly.db import session_scope
from kindly.follow_through import next_window_opening
from kindly.models import Account, FollowUp, Handoff, HandoffMessage, TranscriptTurn, utcnow
from kindly.policy import load_policy
from kindly.privacy import mask_text

KIND = "agent_reply"


def send_agent_reply(handoff_id: int, text: str, now: datetime) -> Optional[Refusal]:
    """Send the text now and record it on the handoff, or say why the policy refuses it now (nothing is sent).
    A Twilio error goes through to the caller, with nothing recorded."""
    with session_scope() as session:
        handoff = session.get(Handoff, handoff_id)
        account = session.get(Account, handoff.account_id)
        refusal = check_agent_reply(session, account, now)
        if refusal:
            return refusal
        phone = account.phone
    send_sms(phone, text)
    with session_scope() as session:
        handoff = session.get(Handoff, handoff_id)
        handoff.status = "claimed"
        kept = mask_text(text, now.date())
        session.add(HandoffMessage(handoff_id=handoff_id, role="agent", channel="sms", text=kept, at=now))
        session.add(TranscriptTurn(conversation_id=handoff.conversation_id, role="agent", text=kept, at=now))
        records.audit(session, "agent", "handoff_reply", "handoff", handoff_id)
    return None


def hold_agent_reply(handoff_id: int, text: str, now: datetime) -> Optional[Refusal]:
    """Keep the text for the next opening of the calling window in every time zone of the customer; a refusal
    when the windows of those zones never meet."""
    with session_scope() as session:
        handoff = session.get(Handoff, handoff_id)
        account = session.get(Account, handoff.account_id)
        start, end = load_policy().contact_hours(account.country)
        opening = next_window_opening(now, sorted(contact_zones(account)), start, end)
        if opening is None:
            return Refusal("calling_window", "no moment is inside the calling window in every time zone of the customer")
        follow_up = records.create_follow_up(session, account, handoff.conversation_id, KIND, None, text, due_at=opening,
                                             handoff_id=handoff.id)
        session.flush()
        records.audit(session, "agent", "handoff_reply_held", "handoff", handoff_id, follow_up=follow_up.id,
                      until=opening.isoformat())
    return None


def held_replies(session: Session, handoff_id: int) -> list[FollowUp]:
    return list(session.scalars(select(FollowUp).where(
        FollowUp.handoff_id == handoff_id, FollowUp.kind == KIND, FollowUp.status.in_(("open", "running"))).order_by(FollowUp.id)))


def cancel_held_replies(session: Session, handoff_id: int, why: str) -> None:
    for follow_up in held_replies(session, handoff_id):
        if follow_up.status == "open":
            follow_up.status, follow_up.closed_at, follow_up.last_error = "cancelled", utcnow(), why
            records.audit(session, "agent", "follow_up_cancelled", "follow_up", follow_up.id, kind=KIND, detail=why)
