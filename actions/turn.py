"""One bot turn inside a custom action: the account, the conversation, the customer's message and the replies."""
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Optional
from zoneinfo import ZoneInfo

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session

from kindly import formatting, records
from kindly.models import Account, Conversation
from kindly.policy import Policy, load_policy
from kindly.privacy import mask_text
from kindly.texts import say
from kindly.timeline import account_timeline

MINIMUM_WORDS = re.compile(r"\bmin(imum)?\b|最低|最少", re.IGNORECASE)


@dataclass
class Turn:
    dispatcher: CollectingDispatcher
    tracker: Tracker
    session: Session
    account: Account
    conversation: Conversation
    policy: Policy = field(default_factory=load_policy)
    events: list = field(default_factory=list)
    # Set when the bot acts on a reading the customer confirmed in the previous turn: the confirmed intent
    # and the words that raised it, instead of the "yes" that confirmed it.
    confirmed_intent: Optional[str] = None
    confirmed_words: Optional[str] = None

    @property
    def language(self) -> str:
        # The session start sets the slot from the conversation; the conversation is the fallback.
        return self.tracker.get_slot("language") or self.conversation.language

    @property
    def channel(self) -> str:
        return self.conversation.channel

    @property
    def direction(self) -> str:
        return self.conversation.direction

    @property
    def stage(self) -> str:
        return self.conversation.stage

    @property
    def timeline(self) -> dict:
        """The account's timeline as the gateway sent it with this message (kindly.timeline)."""
        timeline = (self.tracker.latest_message.get("metadata") or {}).get("timeline")
        if timeline is None:
            timeline = account_timeline(self.session, self.account, self.today, self.conversation.id)
        return timeline

    @property
    def dob_check(self) -> Optional[str]:
        """"match" or "mismatch" when the customer gave a date of birth: the gateway checks it, so the date itself
        never reaches the engine or its tracker store (channels/conversation.py)."""
        return (self.tracker.latest_message.get("metadata") or {}).get("dob_check")

    @property
    def confidence(self) -> float:
        return float((self.tracker.latest_message.get("intent") or {}).get("confidence") or 0.0)

    @property
    def risk_phrases(self) -> list[dict]:
        """The reviewed safety phrases bot.risk_matcher matched in this message, the winning one first: {value, role}."""
        return [e for e in self.tracker.latest_message.get("entities") or [] if e.get("entity") == "risk_phrase"]

    @property
    def risk_phrase(self) -> Optional[dict]:
        return next(iter(self.risk_phrases), None)

    @property
    def today(self) -> date:
        return datetime.now(ZoneInfo(self.account.timezone)).date()

    @property
    def intent(self) -> str:
        return self.confirmed_intent or (self.tracker.latest_message.get("intent") or {}).get("name") or ""

    @property
    def text(self) -> str:
        return self.confirmed_words or self.tracker.latest_message.get("text") or ""

    @property
    def masked_text(self) -> str:
        return mask_text(self.text, self.today)[:500]

    def entity(self, name: str) -> Optional[str]:
        for entity in self.tracker.latest_message.get("entities") or []:
            if entity.get("entity") == name and entity.get("value") is not None:
                return str(entity["value"])
        return None

    def entity_date(self) -> Optional[date]:
        value = self.entity("date")
        try:
            return date.fromisoformat(value) if value else None
        except ValueError:
            return None

    def entity_amount(self) -> Optional[Decimal]:
        value = self.entity("amount")
        return Decimal(value) if value else None

    def entity_count(self) -> Optional[int]:
        value = self.entity("count")
        return int(value) if value and value.isdigit() else None

    def mentions_minimum(self) -> bool:
        return bool(MINIMUM_WORDS.search(self.text))

    def slot(self, name: str) -> Any:
        return self.tracker.get_slot(name)

    def set_slot(self, name: str, value: Any) -> None:
        self.events.append(SlotSet(name, value))

    def money(self, amount: Decimal) -> str:
        return formatting.money(amount, self.account.currency, self.language)

    def day(self, value: date) -> str:
        return formatting.day(value, self.language)

    def text_for(self, key: str, **params) -> str:
        return say(key, self.language, self.channel, self.direction, **{"name": self.account.name, **params})

    def say(self, *texts: str) -> None:
        """Send the texts as one message."""
        self.dispatcher.utter_message(text=("" if self.language == "zh" else " ").join(texts))

    def reply(self, *keys: str, **params) -> None:
        """Send the texts named by `keys`, in the conversation's language, as one message."""
        self.say(*(self.text_for(key, **params) for key in keys))

    def move_to(self, stage: str) -> None:
        self.conversation.stage = stage
        self.set_slot("stage", stage)

    def end(self, disposition: str) -> None:
        records.end_conversation(self.session, self.conversation, disposition)
        self.set_slot("stage", "closed")
