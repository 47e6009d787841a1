"""Safety net at the end of the NLU pipeline: reviewed risk phrases override the intent classifier.

The phrases live in `data/risk_phrases.yml` (its header explains the format to a reviewer). They are
matched with spaCy's PhraseMatcher and Matcher on `spacy.blank("en")` and `spacy.blank("zh")`, so no
model is downloaded. Chinese uses spaCy's "char" segmenter (one token per character): a phrase such
as 盗刷 then matches wherever those characters occur, whereas a word segmenter such as jieba cuts the
same characters differently by context (it reads 被盗刷了 as 被盗/刷/了, so a 盗刷 pattern would
miss), and "char" needs no dictionary or download.

A message containing CJK characters is matched with the Chinese patterns; a message with Latin
letters or digits outside its CJK runs, or with no CJK at all, with the English ones (mixed messages
with both). The English view blanks the CJK characters out, so "我要找lawyer" still shows the word
"lawyer". Both views fold full-width characters and curly quotes and collapse runs of whitespace;
offsets are mapped back, so an entity's value is the text exactly as the customer wrote it.

A match sets the intent of its category with confidence 1.0, first in intent_ranking, and adds one
`risk_phrase` entity per matched phrase with the category as its role: the winning category's first,
then the others in priority order, so that e.g. an opt-out said together with a complaint is still
visible to the actions.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Text, Tuple

import spacy
import yaml
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.shared.nlu.constants import (
    ENTITIES,
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from spacy.matcher import Matcher, PhraseMatcher

ROOT = Path(__file__).resolve().parent.parent
ENTITY = "risk_phrase"
LANGUAGES = ("en", "zh")
UNLESS = "|unless"  # suffix of the match id of a category's exceptions
MAX_PHRASES_PER_TEMPLATE = 20000  # a typo in a template should fail loudly, not build millions

_CJK = re.compile("[\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_OR_DIGIT = re.compile("[A-Za-z0-9]")
_SHOUTED = re.compile(r"\b[A-Z][A-Z']+\b")  # "DON'T": spaCy splits contractions in lower or title case only
_QUOTES = {"\u2018": "'", "\u2019": "'", "\u02bc": "'", "\u201c": '"', "\u201d": '"'}


def _view(text: Text, blank_cjk: bool) -> Tuple[Text, List[int]]:
    """The text as the matcher sees it, and for each of its characters the index in `text`.

    Folds full-width forms and curly quotes, collapses whitespace runs into one space (spaCy makes
    a token of extra spaces, which would split a phrase) and, for the English view, turns CJK
    characters into spaces and shouted words into lower case.
    """
    chars: List[Text] = []
    index: List[int] = []
    for i, char in enumerate(text):
        folded = unicodedata.normalize("NFKC", char)
        char = folded if len(folded) == 1 else char
        char = _QUOTES.get(char, char)
        if blank_cjk and _CJK.match(char):
            char = " "
        if char.isspace():
            if not chars or chars[-1] == " ":
                continue
            char = " "
        chars.append(char)
        index.append(i)
    view = "".join(chars)
    if blank_cjk:
        view = _SHOUTED.sub(lambda m: m.group().lower(), view)
    return view, index


def _expand(template: List[Any], joiner: Text) -> List[Text]:
    """All phrases a template spells: one choice per step ("" = the step may be left out)."""
    steps = [[step] if isinstance(step, str) else step for step in template]
    for choice in itertools.chain(*steps):
        if not isinstance(choice, str):  # YAML reads a bare yes / no / on / off as true / false
            raise ValueError(f"risk phrase template {template}: quote {choice!r}")
    phrases = []
    for choice in itertools.product(*steps):
        phrases.append(joiner.join(str(c) for c in choice if c != "").strip())
        if len(phrases) > MAX_PHRASES_PER_TEMPLATE:
            raise ValueError(f"risk phrase template {template} spells too many phrases")
    return phrases


def _merge(spans: Iterable[Tuple[int, int]]) -> List[Tuple[int, int]]:
    """Overlapping spans joined into one ("被盗" and "盗刷" in 被盗刷 give 被盗刷)."""
    merged: List[Tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


@dataclass
class RiskMatch:
    category: Text
    start: int  # character offsets in the message text
    end: int


class _LanguageMatcher:
    """The PhraseMatcher and Matcher of one language, with every category's entries."""

    def __init__(self, language: Text, categories: Dict[Text, Dict[Text, Any]]) -> None:
        segmenter = {"nlp": {"tokenizer": {"segmenter": "char"}}} if language == "zh" else {}
        self.nlp = spacy.blank(language, config=segmenter)
        self.blank_cjk = language != "zh"
        joiner = "" if language == "zh" else " "
        self.phrases = PhraseMatcher(self.nlp.vocab, attr="LOWER")
        self.patterns = Matcher(self.nlp.vocab)
        for category, spec in categories.items():
            entries = spec.get(language) or {}
            for key, match_id in (("match", category), ("unless", category + UNLESS)):
                phrases: List[Text] = []
                for entry in entries.get(key) or []:
                    if isinstance(entry, str):
                        phrases.append(entry)
                    elif isinstance(entry, list):
                        phrases.extend(_expand(entry, joiner))
                    elif isinstance(entry, dict) and "tokens" in entry:
                        self.patterns.add(match_id, [entry["tokens"]])
                    else:
                        raise ValueError(f"{category}.{language}.{key}: cannot read {entry!r}")
                if phrases:
                    docs = self.nlp.tokenizer.pipe(dict.fromkeys(phrases))
                    self.phrases.add(match_id, list(docs))

    def find(self, text: Text) -> List[RiskMatch]:
        view, index = _view(text, self.blank_cjk)
        if not view.strip():
            return []
        doc = self.nlp.make_doc(view)
        hits = self.phrases(doc) + (self.patterns(doc) if len(self.patterns) else [])
        found = [(self.nlp.vocab.strings[match_id], doc[start:end]) for match_id, start, end in hits]
        matches = []
        for category in {label for label, _ in found if not label.endswith(UNLESS)}:
            exceptions = [span for label, span in found if label == category + UNLESS]
            kept = [
                span for label, span in found
                if label == category and not any(span.start < e.end and e.start < span.end for e in exceptions)
            ]
            for start, end in _merge((span.start_char, span.end_char) for span in kept):
                matches.append(RiskMatch(category, index[start], index[end - 1] + 1))
        return matches


def load_risk_phrases(path: Path) -> Dict[Text, Any]:
    """Reads and checks the phrase file: every category has an intent and a place in the priority."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    categories, priority = data["categories"], data["priority"]
    if sorted(categories) != sorted(priority):
        raise ValueError(f"{path}: 'priority' must list each category once: {priority} vs {sorted(categories)}")
    for name, spec in categories.items():
        if not spec.get("intent"):
            raise ValueError(f"{path}: category {name} has no intent")
        unknown = set(spec) - {"intent", *LANGUAGES}
        if unknown:
            raise ValueError(f"{path}: category {name} has unknown keys {sorted(unknown)}")
    return data


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR],
    is_trainable=False,
)
class RiskPhraseMatcher(GraphComponent, EntityExtractorMixin):
    """Overrides the intent when a reviewed risk phrase (self-harm, death, legal, ...) is said."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        # Relative to the project root.
        return {"phrases_file": "data/risk_phrases.yml"}

    @staticmethod
    def required_packages() -> List[Text]:
        return ["spacy"]

    def __init__(self, config: Dict[Text, Any]) -> None:
        config = {**self.get_default_config(), **config}
        data = load_risk_phrases(ROOT / config["phrases_file"])
        self.priority: List[Text] = data["priority"]
        self.intents = {name: spec["intent"] for name, spec in data["categories"].items()}
        self.matchers = {lang: _LanguageMatcher(lang, data["categories"]) for lang in LANGUAGES}

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> RiskPhraseMatcher:
        return cls(config)

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data

    def find(self, text: Text) -> List[RiskMatch]:
        """Every risk phrase in `text`, the winning category's first, then by priority and position."""
        has_cjk = bool(_CJK.search(text))
        languages = []
        if has_cjk:
            languages.append("zh")
        if not has_cjk or _LATIN_OR_DIGIT.search(_CJK.sub(" ", text)):
            languages.append("en")
        matches = [m for lang in languages for m in self.matchers[lang].find(text)]
        return sorted(matches, key=lambda m: (self.priority.index(m.category), m.start))

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            text = message.get(TEXT) or ""
            matches = self.find(text)
            if matches:
                self._override(message, text, matches)
        return messages

    def _override(self, message: Message, text: Text, matches: List[RiskMatch]) -> None:
        intent = self.intents[matches[0].category]
        message.set(INTENT, {INTENT_NAME_KEY: intent, PREDICTED_CONFIDENCE_KEY: 1.0}, add_to_output=True)
        ranking = [r for r in message.get(INTENT_RANKING_KEY) or [] if r.get(INTENT_NAME_KEY) != intent]
        message.set(
            INTENT_RANKING_KEY,
            [{INTENT_NAME_KEY: intent, PREDICTED_CONFIDENCE_KEY: 1.0}] + ranking,
            add_to_output=True,
        )
        entities = [
            {
                "entity": ENTITY,
                "value": text[m.start:m.end],
                "role": m.category,
                "start": m.start,
                "end": m.end,
                "confidence": 1.0,
            }
            for m in matches
        ]
        message.set(
            ENTITIES, message.get(ENTITIES, []) + self.add_extractor_name(entities), add_to_output=True
        )
