"""TfidfIntentClassifier inside Rasa 3.6, and the held-out NLU files (engine venv only).

Run: .venv-engine/bin/python -m pytest tests/engine/test_tfidf_classifier.py -q --confcutdir=tests/engine
"""

import re
from pathlib import Path

import pytest

rasa = pytest.importorskip("rasa")

import rasa.shared.data  # noqa: E402
import rasa.shared.utils.io  # noqa: E402
from rasa.engine.graph import ExecutionContext, GraphSchema  # noqa: E402
from rasa.engine.recipes.default_recipe import DefaultV1Recipe  # noqa: E402
from rasa.engine.storage.local_model_storage import LocalModelStorage  # noqa: E402
from rasa.engine.storage.resource import Resource  # noqa: E402
from rasa.engine.validation import validate  # noqa: E402
from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader  # noqa: E402
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT  # noqa: E402
from rasa.shared.nlu.training_data.loading import load_data  # noqa: E402
from rasa.shared.nlu.training_data.message import Message  # noqa: E402
from rasa.shared.nlu.training_data.training_data import TrainingData  # noqa: E402

from bot.tfidf_classifier import TfidfIntentClassifier  # noqa: E402
from bot.tokenizer import MixedLanguageTokenizer  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
LANGUAGES = ("en", "zh")
HELD_OUT = {language: ROOT / "tests" / "heldout" / f"nlu_{language}.yml" for language in LANGUAGES}

# The customer phrases issue 6 quotes, with the intent each must carry in the held-out files.
ISSUE_PHRASES = {
    "en": {
        "I already promised 400 on the 11th on the phone": "promise_reference",
        "I lost my job and honestly some days I don't want to live anymore": "self_harm",
        "Michael speaking": "affirm",
        "I can't pay anything at all": "cannot_pay",
        "Can't pay anything": "cannot_pay",
        "Stop calling me": "opt_out",
        "stop contacting me": "opt_out",
        "Whenever": "inform",
        "next payday": "inform",
        "the 1st": "inform",
        "I got a message from you": "ask_purpose",
    },
    "zh": {
        "那我现在该怎么办？": "ask_how_to_pay",
        "我要投诉你们": "complaint",
        "王丽就是我": "affirm",
        "王女士是我": "affirm",
        "是我": "affirm",
        "我上次已经答应15号还400了": "promise_reference",
    },
}

SMALL_DATA = {
    "greet": ["hello", "hi there", "good morning", "你好", "喂，您好", "hey"],
    "already_paid": ["i already paid it", "i paid yesterday", "paid it last week", "我已经还了", "昨天还过了", "已经还清了"],
    "promise_reference": [
        "i already promised to pay on the 15th", "we agreed on a plan last week", "i said i'd pay friday already",
        "我已经答应15号还了", "上次说好了月底还", "我们约好了还款日期",
    ],
    "complaint": [
        "i want to file a complaint", "i'd like to complain about your agent", "how do i make a complaint",
        "我要投诉", "我要投诉你们的催收员", "你们态度太差，我要投诉",
    ],
}


def build(tmp_path, **config):
    return TfidfIntentClassifier.create(
        {**TfidfIntentClassifier.get_default_config(), **config},
        LocalModelStorage(tmp_path),
        Resource("tfidf"),
        ExecutionContext(GraphSchema({}), "test"),
    )


@pytest.fixture(scope="module")
def tokenizer():
    return MixedLanguageTokenizer(MixedLanguageTokenizer.get_default_config())


def tokenized(tokenizer, texts):
    messages = [Message({TEXT: text}) for text in texts]
    tokenizer.process(messages)
    return messages


def small_training_data(tokenizer) -> TrainingData:
    examples = [
        Message({TEXT: text, INTENT: intent}) for intent, texts in SMALL_DATA.items() for text in texts
    ]
    data = TrainingData(training_examples=examples)
    tokenizer.process_training_data(data)
    return data


def test_outputs_intent_and_a_ranking_of_confidences(tmp_path, tokenizer):
    classifier = build(tmp_path)
    classifier.train(small_training_data(tokenizer))
    messages = tokenized(tokenizer, ["i already promised to pay friday", "我要投诉你们", "hello there"])
    classifier.process(messages)

    assert [m.get(INTENT)["name"] for m in messages] == ["promise_reference", "complaint", "greet"]
    for message in messages:
        ranking = message.get(INTENT_RANKING_KEY)
        assert message.get(INTENT) == ranking[0]
        assert len(ranking) == len(SMALL_DATA)
        confidences = [r["confidence"] for r in ranking]
        assert confidences == sorted(confidences, reverse=True)
        assert all(isinstance(c, float) and 0.0 <= c <= 1.0 for c in confidences)
        assert sum(confidences) == pytest.approx(1.0)
    output = messages[0].as_dict(only_output_properties=True)  # what the parse result carries
    assert output[INTENT]["name"] == "promise_reference" and len(output[INTENT_RANKING_KEY]) == len(SMALL_DATA)


def test_ranking_length_is_honoured(tmp_path, tokenizer):
    classifier = build(tmp_path, ranking_length=2)
    classifier.train(small_training_data(tokenizer))
    [message] = tokenized(tokenizer, ["we agreed on a payment plan"])
    classifier.process([message])
    assert len(message.get(INTENT_RANKING_KEY)) == 2


def test_persisted_model_loads_and_predicts_the_same(tmp_path, tokenizer):
    classifier = build(tmp_path)
    classifier.train(small_training_data(tokenizer))
    texts = ["i paid it last night", "我昨天已经还了", "我上次答应了月底还", "complain"]
    before = tokenized(tokenizer, texts)
    classifier.process(before)

    loaded = TfidfIntentClassifier.load(
        TfidfIntentClassifier.get_default_config(),
        LocalModelStorage(tmp_path),
        Resource("tfidf"),
        ExecutionContext(GraphSchema({}), "test"),
    )
    after = tokenized(tokenizer, texts)
    loaded.process(after)
    assert [m.get(INTENT_RANKING_KEY) for m in after] == [m.get(INTENT_RANKING_KEY) for m in before]


def test_without_a_trained_model_messages_are_left_alone(tmp_path, tokenizer):
    loaded = TfidfIntentClassifier.load(
        TfidfIntentClassifier.get_default_config(),
        LocalModelStorage(tmp_path),
        Resource("never_trained"),
        ExecutionContext(GraphSchema({}), "test"),
    )
    [message] = tokenized(tokenizer, ["hello"])
    loaded.process([message])
    assert message.get(INTENT) is None


def test_production_config_places_the_classifier():
    config = rasa.shared.utils.io.read_config_file(ROOT / "config.yml")
    registered = DefaultV1Recipe._from_registry("bot.tfidf_classifier.TfidfIntentClassifier")
    assert registered.clazz is TfidfIntentClassifier
    assert registered.types == {DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER}
    assert registered.is_trainable
    model_configuration = DefaultV1Recipe().graph_config_for_recipe(config, {})
    validate(model_configuration)
    uses = {node.uses for node in model_configuration.predict_schema.nodes.values()}
    assert TfidfIntentClassifier in uses


# ---------------------------------------------------------------- the held-out files


def normalized(text: str) -> str:
    """Case, spaces and punctuation do not make a phrasing new."""
    return re.sub(r"[\s\W_]+", "", text.lower()) or text.strip()


@pytest.fixture(scope="module")
def held_out():
    return {language: load_data(str(path)).intent_examples for language, path in HELD_OUT.items()}


@pytest.mark.parametrize("language", LANGUAGES)
def test_held_out_file_is_nlu_data_that_story_tests_skip(language):
    path = str(HELD_OUT[language])
    assert rasa.shared.data.is_nlu_file(path)
    # `rasa test core --stories tests/` reads only files with stories or rules.
    assert not YAMLStoryReader.is_stories_file(path)
    story_files = rasa.shared.data.get_data_files([str(ROOT / "tests")], YAMLStoryReader.is_stories_file)
    assert not any(Path(f).parent.name == "heldout" for f in story_files)


@pytest.mark.parametrize("language", LANGUAGES)
def test_held_out_covers_every_intent_of_the_domain(held_out, language):
    domain_intents = rasa.shared.utils.io.read_yaml_file(ROOT / "domain.yml")["intents"]
    counts = {}
    for message in held_out[language]:
        counts[message.get(INTENT)] = counts.get(message.get(INTENT), 0) + 1
    assert set(counts) == set(domain_intents)
    assert min(counts.values()) >= 5, {i: n for i, n in counts.items() if n < 5}


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_held_out_text_appears_in_the_training_data(held_out, language):
    training = {}
    for path in sorted((ROOT / "data" / "nlu").glob("*.yml")):
        for message in load_data(str(path)).intent_examples:
            training[normalized(message.get(TEXT))] = (path.name, message.get(TEXT))
    found = {m.get(TEXT): training[normalized(m.get(TEXT))] for m in held_out[language] if normalized(m.get(TEXT)) in training}
    assert found == {}


@pytest.mark.parametrize("language", LANGUAGES)
def test_held_out_has_the_issue_phrases_under_their_intents(held_out, language):
    labelled = {m.get(TEXT): m.get(INTENT) for m in held_out[language]}
    assert {text: labelled.get(text) for text in ISSUE_PHRASES[language]} == ISSUE_PHRASES[language]
