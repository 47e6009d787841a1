"""Rule-based entity extractor: dates, money amounts and installment counts (bot.normalize).

Relative dates are resolved against today in the account's time zone, and numeric dates are
read day or month first by the account's country; both come from the UserMessage metadata
(`{"timezone": "Asia/Shanghai", "country": "CN"}`), which Rasa 3.6 puts on the message as
"metadata".
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any, Dict, List, Text
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.normalize import find_entities

logger = logging.getLogger(__name__)


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=False
)
class KindlyEntityExtractor(GraphComponent, EntityExtractorMixin):
    """Adds `date`, `amount` and `count` entities found by `bot.normalize`."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"default_timezone": "America/New_York", "default_country": "US"}

    def __init__(self, config: Dict[Text, Any]) -> None:
        self._config = {**self.get_default_config(), **config}

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> KindlyEntityExtractor:
        return cls(config)

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            text = message.get(TEXT)
            if not text:
                continue
            metadata = message.get("metadata") or {}
            country = metadata.get("country") or self._config["default_country"]
            entities = [
                {
                    "entity": found["entity"],
                    "start": found["start"],
                    "end": found["end"],
                    "value": found["value"],
                    "confidence": 1.0,
                }
                for found in find_entities(text, self._today(metadata), country)
            ]
            message.set(
                ENTITIES,
                message.get(ENTITIES, []) + self.add_extractor_name(entities),
                add_to_output=True,
            )
        return messages

    def _today(self, metadata: Dict[Text, Any]) -> date:
        name = metadata.get("timezone") or self._config["default_timezone"]
        try:
            zone = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            logger.warning(f"Unknown time zone '{name}', using the default.")
            zone = ZoneInfo(self._config["default_timezone"])
        return datetime.now(zone).date()
