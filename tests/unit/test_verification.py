"""The verification step run as the action server runs it: real rasa-sdk tracker, real database. The gateway
checks the date of birth and tells the engine only `dob_check` (channels/conversation.py)."""
import asyncio
from datetime import date

from rasa_sdk import Tracker
from sqlalchemy import func, select
from rasa_sdk.executor import CollectingDispatcher

from actions.actions import ActionVerifyIdentity
from channels.conversation import start_conversation
from kindly.accounts import create_account
from kindly.db import session_scope
from kindly.models import Conversation, Handoff, VerificationAttempt
from tests.conftest import account_fields


def new_conversation(**overrides) -> str:
    fields = account_fields(**overrides)
    fields.update(date_of_birth=date.fromisoformat(fields["date_of_birth"]), due_date=date.fromisoformat(fields["due_date"]))
    with session_scope() as session:
        account_id = create_account(session, fields).id
    conversation_id = start_conversation(account_id, "sms", "outbound")
    with session_scope() as session:
        session.get(Conversation, conversation_id).stage = "verify"
    return conversation_id


def answer_dob(conversation_id: str, said: str, dob_check: str | None, slots: dict, intent: str = "inform") -> tuple[list[str], dict]:
    tracker = Tracker(
        sender_id=conversation_id,
        slots={"conversation_id": conversation_id, "stage": "verify", **slots},
        latest_message={"text": said, "intent": {"name": intent, "confidence": 0.9}, "entities": [],
                        "metadata": {"dob_check": dob_check}},
        events=[],
        paused=False,
        followup_action=None,
        active_loop={},
        latest_action_name="action_listen",
    )
    dispatcher = CollectingDispatcher()
    events = asyncio.run(ActionVerifyIdentity().run(dispatcher, tracker, {}))
    slots = {**slots, **{e["name"]: e["value"] for e in events if e["event"] == "slot"}}
    return [m["text"] for m in dispatcher.messages], slots


def failed_attempts(conversation_id: str) -> int:
    with session_scope() as session:
        conversation = session.get(Conversation, conversation_id)
        return session.scalar(
            select(func.count(VerificationAttempt.id)).where(
                VerificationAttempt.account_id == conversation.account_id, VerificationAttempt.succeeded.is_(False))
        )


def test_three_wrong_answers_lock_verification_and_disclose_nothing():
    conversation_id = new_conversation()
    slots: dict = {}
    said = []
    for answer, check in [("march 6 1985", "mismatch"), ("uh February 30", None), ("1990-01-01", "mismatch")]:
        messages, slots = answer_dob(conversation_id, answer, check, slots)
        said += messages
    with session_scope() as session:
        conversation = session.get(Conversation, conversation_id)
        assert conversation.disposition == "verification_failed" and conversation.ended_at is not None
        assert not conversation.verified
        [handoff] = session.scalars(select(Handoff).where(Handoff.conversation_id == conversation_id))
        assert handoff.reason == "verification_locked"
    assert failed_attempts(conversation_id) == 3
    assert not any("1,000" in m or "$" in m or "debt" in m.lower() for m in said)
    assert "unable to confirm your identity" in said[-1]


def test_an_answer_that_is_not_a_date_is_asked_again_once_without_using_an_attempt():
    conversation_id = new_conversation()
    messages, slots = answer_dob(conversation_id, "hang on a sec", None, {}, intent="affirm")
    assert failed_attempts(conversation_id) == 0 and "date of birth" in messages[0]
    answer_dob(conversation_id, "still looking", None, slots, intent="affirm")
    assert failed_attempts(conversation_id) == 1  # asked twice without progress: it counts


def test_right_answer_after_one_miss_verifies_and_then_discloses():
    conversation_id = new_conversation()
    messages, slots = answer_dob(conversation_id, "march 6 1985", "mismatch", {})
    assert "doesn't match" in messages[0]
    messages, slots = answer_dob(conversation_id, "march 5 1985", "match", slots)
    assert slots["stage"] == "reason" and slots["verified"] is True
    assert "attempt to collect a debt" in messages[0] and "$1,000.00" in " ".join(messages)
