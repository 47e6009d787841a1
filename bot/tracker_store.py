"""The engines' conversation store (endpoints.yml `tracker_store`): Rasa's SQLTrackerStore, without what the
customer typed.

A customer's words can hold a date of birth, a card number or an ID number, and the gateway already keeps the
masked transcript; the store keeps the rest of each turn: the intent, which entities were given (not their
values), the slots (`stage`, `proposal`, the attempt counts), the actions and the bot's words. The dialogue
never reads an earlier turn's words back (the current turn's are still in memory while its actions run), so a
conversation restored by any engine goes on exactly where it was. It imports nothing from the application."""
from typing import Any, Dict, Iterator

from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import Event, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

ENTITY_KEYS_KEPT = ("entity", "role", "group")


def without_words(event: UserUttered) -> UserUttered:
    entities = [{key: entity[key] for key in ENTITY_KEYS_KEPT if key in entity} for entity in event.entities]
    parse_data: Dict[str, Any] = {"text": "", "intent": event.intent, "entities": entities}
    return UserUttered(
        text="", intent=event.intent, entities=entities, parse_data=parse_data, timestamp=event.timestamp,
        input_channel=event.input_channel, message_id=event.message_id, metadata=event.metadata,
    )


class RedactingSQLTrackerStore(SQLTrackerStore):
    def _additional_events(self, session: Any, tracker: DialogueStateTracker) -> Iterator[Event]:
        for event in super()._additional_events(session, tracker):
            yield without_words(event) if isinstance(event, UserUttered) else event
