"""Tokenizer for mixed Chinese / English messages.

Runs of CJK characters are segmented with jieba; everything else is split on whitespace and
punctuation, with currency signs kept as tokens of their own. Tokens are then cut at the
boundaries of the entities `bot.normalize` finds, so that annotations such as "[$200](amount)",
"分[12期](count)" or "[两千五](amount)" start and end on token boundaries even where jieba
would glue the number to its neighbour (jieba reads "我想分" or "还五百" as one word).
"""

from __future__ import annotations

import logging
import re
from datetime import date
from typing import Any, Dict, List, Optional, Text

import jieba
from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.tokenizers.tokenizer import Token, Tokenizer
from rasa.shared.nlu.training_data.message import Message

from bot.normalize import find_entities

jieba.setLogLevel(logging.WARNING)  # no "Building prefix dict" chatter

_CJK = "\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_W = rf"(?:(?![{_CJK}])[^\W_])"  # a word character that is not CJK
_PIECES = re.compile(
    rf"(?P<cjk>[{_CJK}]+)"
    r"|(?P<sign>[$¥￥€£]|-(?=[$¥￥\d]))"
    # other letters and digits; digits joined by . , : / - ("1,250.50", "3/5/1985"),
    # letters by ' or - ("don't", "e-mail")
    rf"|{_W}+(?:(?:(?<=\d)[.,:/\-](?=\d)|(?<=[^\W\d_])['’\-](?=[^\W\d_])){_W}+)*"
)


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=False
)
class MixedLanguageTokenizer(Tokenizer):
    """jieba for Chinese, whitespace and punctuation for the rest."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            "intent_tokenization_flag": False,
            "intent_split_symbol": "_",
            "token_pattern": None,
            "prefix_separator_symbol": None,
        }

    @staticmethod
    def required_packages() -> List[Text]:
        return ["jieba"]

    @staticmethod
    def supported_languages() -> Optional[List[Text]]:
        return None  # any

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> MixedLanguageTokenizer:
        # Load jieba's dictionary now, not on the first Chinese message (about 0.7 s).
        jieba.initialize()
        return cls(config)

    def tokenize(self, message: Message, attribute: Text) -> List[Token]:
        text = message.get(attribute)
        spans = []
        for m in _PIECES.finditer(text):
            if m.group("cjk"):
                spans.extend(
                    (m.start() + start, m.start() + end)
                    for _, start, end in jieba.tokenize(m.group())
                )
            else:
                spans.append(m.span())
        if not spans:  # only punctuation or emoji: keep the whole text as one token
            spans = [(0, len(text))]

        # Entity spans do not depend on the date, so any `today` will do.
        cuts = set()
        for entity in find_entities(text, date.today()):
            cuts.update((entity["start"], entity["end"]))
        tokens = []
        for start, end in spans:
            points = [start] + sorted(c for c in cuts if start < c < end) + [end]
            tokens.extend(Token(text[a:b], a) for a, b in zip(points, points[1:]))
        return self._apply_token_pattern(tokens)
