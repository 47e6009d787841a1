"""The engines' conversation store (bot/tracker_store.py, engine venv only): endpoints.yml builds it, a new engine
reads back exactly the conversation another one saved, and no customer's words are stored.

Run: .venv-engine/bin/python -m pytest tests/engine/test_tracker_store.py --confcutdir=tests/engine
"""
import asyncio
import sqlite3
from pathlib import Path

import pytest

rasa = pytest.importorskip("rasa")

from rasa.core.lock_store import InMemoryLockStore, LockStore, RedisLockStore  # noqa: E402
from rasa.core.tracker_store import TrackerStore  # noqa: E402
from rasa.shared.core.domain import Domain  # noqa: E402
from rasa.shared.core.events import ActionExecuted, BotUttered, SlotSet, UserUttered  # noqa: E402
from rasa.shared.core.trackers import DialogueStateTracker  # noqa: E402
from rasa.utils.endpoints import read_endpoint_config  # noqa: E402

from bot.tracker_store import RedactingSQLTrackerStore  # noqa: E402

ENDPOINTS = Path(__file__).resolve().parents[2] / "endpoints.yml"
DOMAIN = Domain.from_yaml("""
version: "3.1"
intents: [inform_dob, request_plan]
entities: [date, installments]
slots:
  stage: {type: text, influence_conversation: false, mappings: [{type: custom}]}
  proposal: {type: any, influence_conversation: false, mappings: [{type: custom}]}
  dob_attempts: {type: float, influence_conversation: false, mappings: [{type: custom}]}
""")
PROPOSAL = {"plan_type": "installment", "count": 12, "due_date": "2026-12-04"}


@pytest.fixture
def endpoints_env(monkeypatch, tmp_path):
    url = f"sqlite:///{tmp_path / 'tracker.db'}"
    for name, value in dict(ACTION_SERVER_URL="http://127.0.0.1:5055/webhook", TRACKER_STORE_URL=url,
                            LOCK_STORE_TYPE="in_memory", LOCK_STORE_HOST="127.0.0.1", LOCK_STORE_PORT="6379",
                            LOCK_STORE_DB="1").items():
        monkeypatch.setenv(name, value)
    return tmp_path / "tracker.db"


def store_from_endpoints() -> TrackerStore:
    return TrackerStore.create(read_endpoint_config(str(ENDPOINTS), "tracker_store"), DOMAIN)


def a_conversation() -> DialogueStateTracker:
    tracker = DialogueStateTracker("conversation-1", DOMAIN.slots)
    tracker.update(UserUttered(
        "it's march fifth 1985, card 4111 1111 1111 1111", {"name": "inform_dob", "confidence": 0.97},
        [{"entity": "date", "value": "1985-03-05", "start": 5, "end": 21, "extractor": "KindlyEntityExtractor"}],
    ))
    tracker.update(SlotSet("stage", "reason"))
    tracker.update(SlotSet("dob_attempts", 1.0))
    tracker.update(SlotSet("proposal", PROPOSAL))
    tracker.update(BotUttered("Thank you. Could you tell me what happened?"))
    tracker.update(ActionExecuted("action_listen"))
    return tracker


def test_endpoints_yml_builds_the_redacting_sql_store(endpoints_env):
    store = store_from_endpoints()
    assert isinstance(getattr(store, "_tracker_store", store), RedactingSQLTrackerStore)
    assert isinstance(LockStore.create(read_endpoint_config(str(ENDPOINTS), "lock_store")), InMemoryLockStore)


def test_several_engines_lock_in_redis(endpoints_env, monkeypatch):
    monkeypatch.setenv("LOCK_STORE_TYPE", "redis")
    lock_store = LockStore.create(read_endpoint_config(str(ENDPOINTS), "lock_store"))
    assert isinstance(lock_store, RedisLockStore)
    assert lock_store.red.connection_pool.connection_kwargs["port"] == 6379


def test_another_engine_reads_back_the_conversation_without_the_customers_words(endpoints_env):
    asyncio.run(store_from_endpoints().save(a_conversation()))

    restored = asyncio.run(store_from_endpoints().retrieve("conversation-1"))  # a new store: an engine restarted
    assert restored.get_slot("stage") == "reason" and restored.get_slot("proposal") == PROPOSAL
    assert restored.get_slot("dob_attempts") == 1.0
    assert restored.latest_message.intent["name"] == "inform_dob"
    assert [e["entity"] for e in restored.latest_message.entities] == ["date"]
    assert restored.latest_bot_utterance.text == "Thank you. Could you tell me what happened?"
    assert len(restored.events) == len(a_conversation().events)

    with sqlite3.connect(endpoints_env) as database:
        stored = " ".join(data for (data,) in database.execute("SELECT data FROM events"))
    for secret in ("1985", "march", "4111"):
        assert secret not in stored.lower()
    assert '"stage"' in stored and "Could you tell me" in stored


def test_more_turns_are_appended_not_rewritten(endpoints_env):
    tracker = a_conversation()
    asyncio.run(store_from_endpoints().save(tracker))
    tracker.update(UserUttered("twelve months please", {"name": "request_plan", "confidence": 0.9}))
    tracker.update(SlotSet("stage", "options"))
    asyncio.run(store_from_endpoints().save(tracker))
    restored = asyncio.run(store_from_endpoints().retrieve("conversation-1"))
    assert restored.get_slot("stage") == "options" and restored.latest_message.intent["name"] == "request_plan"
    assert len(restored.events) == len(tracker.events)
