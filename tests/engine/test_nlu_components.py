"""MixedLanguageTokenizer and KindlyEntityExtractor inside Rasa 3.6 (engine venv only).

Run: .venv-engine/bin/python -m pytest tests/engine/test_nlu_components.py
"""

import logging
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

rasa = pytest.importorskip("rasa")

from rasa.engine.graph import ExecutionContext, GraphSchema  # noqa: E402
from rasa.engine.recipes.default_recipe import DefaultV1Recipe  # noqa: E402
from rasa.engine.storage.local_model_storage import LocalModelStorage  # noqa: E402
from rasa.engine.storage.resource import Resource  # noqa: E402
from rasa.engine.validation import validate  # noqa: E402
from rasa.nlu.constants import TOKENS_NAMES  # noqa: E402
from rasa.shared.nlu.constants import ENTITIES, TEXT  # noqa: E402
from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader  # noqa: E402
from rasa.shared.nlu.training_data.loading import load_data  # noqa: E402
from rasa.shared.nlu.training_data.message import Message  # noqa: E402

from bot.entity_extractor import KindlyEntityExtractor  # noqa: E402
from bot.tokenizer import MixedLanguageTokenizer  # noqa: E402


def build(component, tmp_path, **config):
    """Creates a component the way the Rasa graph does: default config merged with ours."""
    return component.create(
        {**component.get_default_config(), **config},
        LocalModelStorage(tmp_path),
        Resource(component.__name__),
        ExecutionContext(GraphSchema({}), "test"),
    )


@pytest.fixture
def tokenizer(tmp_path):
    return build(MixedLanguageTokenizer, tmp_path)


@pytest.fixture
def extractor(tmp_path):
    return build(KindlyEntityExtractor, tmp_path)


def tokens(tokenizer, text):
    message = Message({TEXT: text})
    tokenizer.process([message])
    return [(t.text, t.start, t.end) for t in message.get(TOKENS_NAMES[TEXT])]


def words(tokenizer, text):
    return [t[0] for t in tokens(tokenizer, text)]


@pytest.mark.parametrize("text,expected", [
    ("我想分12期 ok吗", ["我想分", "12", "期", "ok", "吗"]),
    ("can I pay $200 next friday", ["can", "I", "pay", "$", "200", "next", "friday"]),
    ("Hi, who's this?", ["Hi", "who's", "this"]),
    ("$1,250.50 on 3/5/1985", ["$", "1,250.50", "on", "3/5/1985"]),
    ("-$50", ["-", "$", "50"]),
    ("¥500还是￥500", ["¥", "500", "还是", "￥", "500"]),
    ("15号ok", ["15", "号", "ok"]),
    ("下周五还五百块", ["下", "周五", "还", "五百块"]),
    # jieba glues these; the cut at the entity boundary keeps "五百" / "六期" whole
    ("我想还五百吧", ["我", "想", "还", "五百", "吧"]),
    ("分六期吧", ["分", "六期", "吧"]),
    ("?!", ["?!"]),
])
def test_tokens(tokenizer, text, expected):
    assert words(tokenizer, text) == expected


def test_token_offsets(tokenizer):
    text = "我想分12期 ok吗"
    found = tokens(tokenizer, text)
    assert found == [("我想分", 0, 3), ("12", 3, 5), ("期", 5, 6), ("ok", 7, 9), ("吗", 9, 10)]
    assert all(text[start:end] == word for word, start, end in found)


def test_token_pattern_is_honoured(tmp_path):
    tokenizer = build(MixedLanguageTokenizer, tmp_path, token_pattern=r"[a-z]+|\d+")
    assert words(tokenizer, "pay200 later") == ["pay", "200", "later"]


def test_jieba_startup_logging_is_silenced(tokenizer):
    import jieba

    assert jieba.default_logger.level >= logging.WARNING


NLU_YAML = """
version: "3.1"
nlu:
- intent: inform
  examples: |
    - [March 5th 1985](date)
    - [19850305](date)
    - [3/5/1985](date)
    - [the 15th](date)
    - [1985年3月5日](date)
    - [八五年三月五号](date)
    - [五百块](amount)
    - [两千五](amount)
    - [下周五](date)
    - [15号](date)
- intent: pay_partial
  examples: |
    - can I pay [$200](amount) on [Friday](date)
    - I can do [two hundred bucks](amount) by the [end of the month](date)
    - 我先还[五百](amount)，[下周五](date)还[两千五](amount)
    - 我[下个月10号](date)还[2000块钱](amount)
    - [月底](date)前先还[三千五百块钱](amount)
- intent: installments
  examples: |
    - can I split it over [6 months](count)
    - 我想分[12期](count)
    - 分[六期](count)吧
    - [十二个月](count)可以吗
    - 我[下周一](date)一次性结清
    - 医药费就花了[两万](amount)
    - 可以先还个[1000](amount)不？
    - split it in [12 months](count)
"""


def test_entity_annotations_align_with_tokens(tokenizer):
    data = RasaYAMLReader().reads(NLU_YAML)
    tokenizer.process_training_data(data)
    for example in data.training_examples:
        starts = {t.start for t in example.get(TOKENS_NAMES[TEXT])}
        ends = {t.end for t in example.get(TOKENS_NAMES[TEXT])}
        for entity in example.get(ENTITIES, []):
            assert entity["start"] in starts and entity["end"] in ends, (example.get(TEXT), entity)


@pytest.mark.parametrize("name", ["en.yml", "zh.yml"])
def test_project_nlu_annotations_align_with_tokens(tokenizer, name):
    path = Path(__file__).resolve().parents[2] / "data" / "nlu" / name
    if not path.exists():
        pytest.skip(f"{path} not written yet")
    data = load_data(str(path))
    tokenizer.process_training_data(data)
    misaligned = []
    for example in data.training_examples:
        starts = {t.start for t in example.get(TOKENS_NAMES[TEXT])}
        ends = {t.end for t in example.get(TOKENS_NAMES[TEXT])}
        misaligned += [(example.get(TEXT), e["entity"]) for e in example.get(ENTITIES, [])
                       if e["start"] not in starts or e["end"] not in ends]
    assert misaligned == []


def extract(extractor, text, metadata=None, entities=None):
    data = {TEXT: text, "metadata": metadata}
    if entities is not None:
        data[ENTITIES] = entities
    message = Message(data)
    extractor.process([message])
    return message.get(ENTITIES)


def test_entities_with_values(extractor):
    text = "can I pay $200 on March 5th, 2031 in 12 installments"
    assert extract(extractor, text, {"timezone": "America/New_York", "country": "US"}) == [
        {"entity": "amount", "start": 10, "end": 14, "value": "200.00",
         "extractor": "KindlyEntityExtractor", "confidence": 1.0},
        {"entity": "date", "start": 18, "end": 33, "value": "2031-03-05",
         "extractor": "KindlyEntityExtractor", "confidence": 1.0},
        {"entity": "count", "start": 37, "end": 52, "value": "12",
         "extractor": "KindlyEntityExtractor", "confidence": 1.0},
    ]


def test_chinese_entities(extractor):
    found = extract(extractor, "我一九八五年三月五号出生，我想先还两千五，再分12期",
                    {"timezone": "Asia/Shanghai", "country": "CN"})
    assert [(e["entity"], e["value"]) for e in found] == [
        ("date", "1985-03-05"), ("amount", "2500.00"), ("count", "12")]


@pytest.mark.parametrize("country,value", [("US", "1985-03-05"), ("CN", "1985-05-03")])
def test_country_sets_day_month_order(extractor, country, value):
    found = extract(extractor, "3/5/1985", {"country": country})
    assert [e["value"] for e in found] == [value]


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Pacific/Pago_Pago", "Asia/Shanghai"])
def test_relative_dates_use_the_account_time_zone(extractor, zone):
    # UTC+14 and UTC-11 never share a calendar date, so the zone must matter
    today = datetime.now(ZoneInfo(zone)).date()
    found = extract(extractor, "tomorrow or 明天", {"timezone": zone})
    assert [e["value"] for e in found] == [(today + timedelta(days=1)).isoformat()] * 2


@pytest.mark.parametrize("metadata", [None, {}, {"timezone": "Not/AZone"}])
def test_defaults_without_usable_metadata(extractor, metadata):
    today = datetime.now(ZoneInfo("America/New_York")).date()
    found = extract(extractor, "today, 3/5/1985", metadata)
    assert [e["value"] for e in found] == [today.isoformat(), "1985-03-05"]


def test_other_extractors_entities_are_kept(extractor):
    other = {"entity": "reason", "start": 0, "end": 4, "value": "x", "extractor": "DIETClassifier"}
    found = extract(extractor, "lost my job, $50", entities=[other])
    assert found[0] == other
    assert [(e["entity"], e["value"]) for e in found[1:]] == [("amount", "50.00")]


def test_message_without_entities_gets_an_empty_list(extractor):
    assert extract(extractor, "hello") == []


def test_process_training_data_is_a_no_op(extractor):
    data = RasaYAMLReader().reads(NLU_YAML)
    before = [dict(e.get(ENTITIES, [])[0]) if e.get(ENTITIES) else None
              for e in data.training_examples]
    assert extractor.process_training_data(data) is data
    assert before == [dict(e.get(ENTITIES, [])[0]) if e.get(ENTITIES) else None
                      for e in data.training_examples]


def test_pipeline_from_config_by_module_path():
    """config.yml names the components by module path; the recipe must place and validate them."""
    config = {
        "recipe": "default.v1",
        "language": "zh",
        "pipeline": [
            {"name": "bot.tokenizer.MixedLanguageTokenizer"},
            {"name": "CountVectorsFeaturizer"},
            {"name": "LogisticRegressionClassifier"},
            {"name": "bot.entity_extractor.KindlyEntityExtractor"},
        ],
        "policies": [],
    }
    registered = DefaultV1Recipe._from_registry("bot.entity_extractor.KindlyEntityExtractor")
    assert registered.clazz is KindlyEntityExtractor
    assert registered.types == {DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR}
    assert not registered.is_trainable
    registered = DefaultV1Recipe._from_registry("bot.tokenizer.MixedLanguageTokenizer")
    assert registered.types == {DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER}
    assert not registered.is_trainable

    model_configuration = DefaultV1Recipe().graph_config_for_recipe(config, {})
    validate(model_configuration)
    uses = {node.uses for node in model_configuration.predict_schema.nodes.values()}
    assert {MixedLanguageTokenizer, KindlyEntityExtractor} <= uses


def test_action_responses_are_still_checked_against_rasas_schema():
    import pytest
    from jsonschema import ValidationError
    from rasa.core.actions.action import RemoteAction

    import bot.rasa_channel  # noqa: F401  (installs the check)

    action = RemoteAction("action_x", None)
    assert action._validate_action_result({"events": [{"event": "slot", "name": "stage", "value": "verify"}], "responses": []})
    with pytest.raises(ValidationError, match="Failed to validate Action server response"):
        action._validate_action_result({"events": [{"no_event_key": 1}], "responses": "not a list"})
