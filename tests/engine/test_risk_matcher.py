"""RiskPhraseMatcher (bot/risk_matcher.py) with the reviewed phrases of data/risk_phrases.yml (engine venv only).

Run: PYTHONPATH=. .venv-engine/bin/python -m pytest tests/engine/test_risk_matcher.py --confcutdir=tests/engine
"""

import asyncio

import pytest
import yaml

rasa = pytest.importorskip("rasa")

from rasa.core.agent import Agent  # noqa: E402
from rasa.engine.graph import ExecutionContext, GraphSchema  # noqa: E402
from rasa.engine.storage.local_model_storage import LocalModelStorage  # noqa: E402
from rasa.engine.storage.resource import Resource  # noqa: E402
from rasa.model_training import train_nlu  # noqa: E402
from rasa.shared.nlu.constants import ENTITIES, INTENT, INTENT_RANKING_KEY, TEXT  # noqa: E402
from rasa.shared.nlu.training_data.message import Message  # noqa: E402

from bot.risk_matcher import ROOT, RiskPhraseMatcher, _expand, load_risk_phrases  # noqa: E402

INTENTS = {
    "self_harm": "self_harm", "bereavement": "deceased", "legal": "legal", "fraud": "fraud",
    "threat": "abuse", "regulator": "complaint", "complaint": "complaint",
    "cease_all": "opt_out", "cease_calls": "opt_out",
}

# Phrasings each category must win, in each language. Typos, slang, lower case and mixed Chinese/English
# included; none of them is copied from data/nlu.
MATCHES = {
    ("self_harm", "en"): [
        "I lost my job and honestly some days I don't want to live anymore",
        "i dont wanna live anymore",
        "honestly i want to die",
        "I've been thinking about killing myself",
        "sometimes I think everyone would be better off without me",
        "im gonna kms",
        "I'm having suicidal thoughts again",
        "there's nothing left to live for",
        "I just want to end it all",
        "i feel like hurting myself",
        "I Don’t Want To Be Alive",
        "life isn't worth living with this debt",
    ],
    ("self_harm", "zh"): [
        "我真的不想活了",
        "活着没意思",
        "我想死",
        "我有过轻生的念头",
        "真的活不下去了",
        "我想自杀",
        "不如死了算了",
        "活着真没意思 sorry",
        "我想结束自己的生命",
        "我真的想一了百了",
        "我不想活了啦，别逼我",
        "我不想活在这个世上了",
    ],
    ("bereavement", "en"): [
        "he passed away last month",
        "Sorry, she passed away in March",
        "he died in January",
        "the account holder has passed away",
        "Michael passed away in May.",
        "my husband passed away, this was his card",
        "this is my late wife's card",
        "I'm the executor of his estate",
        "she's no longer with us",
        "the cardholder is deceased",
        "unfortunately he died two weeks ago",
        "michael passed away two weeks ago",
    ],
    ("bereavement", "zh"): [
        "他已经去世了",
        "她去年过世了",
        "机主已经去世了",
        "持卡人上个月去世了",
        "他上个月走了",
        "你找的那个人已经不在了",
        "他本人已经离世了",
        "人都走了三个月了",
        "我爸已经走了，这卡是他的",
        "他已經過世了",
        "这张卡的主人去世了",
        "我是他太太，他上个月已经去世了",
        "王丽已经去世了",
    ],
    ("legal", "en"): [
        "talk to my lawyer",
        "I'm filing for bankruptcy",
        "i filed chapter 7 last month",
        "I'm going to sue you",
        "my attorney will be in touch",
        "we'll see you in court",
        "I have a pending lawsuit against the bank",
        "pls contact my atty",
        "I've retained a law firm",
        "you're violating the FDCPA",
        "I'm not going to sue, but my lawyer will call you",
    ],
    ("legal", "zh"): [
        "我已经请律师了",
        "我要起诉你们",
        "我申请破产了",
        "有事找我律师",
        "咱们法庭上见",
        "我会走法律程序",
        "我已经收到法院传票了",
        "我要找lawyer",
        "这事交给我的律所处理",
        "我在走个人破产程序",
    ],
    ("fraud", "en"): [
        "my card was stolen",
        "someone stole my identity",
        "there are unauthorized charges on my account",
        "I didn't make those charges",
        "this is identity theft",
        "someone opened this account in my name",
        "i think my card got skimmed",
        "i never authorized these transactions",
        "those aren't my charges",
        "my account was hacked",
    ],
    ("fraud", "zh"): [
        "我的卡被盗刷了",
        "卡被盗了",
        "有人冒用我的身份办卡",
        "这几笔不是我刷的",
        "我没有授权这几笔交易",
        "我的信息泄露了",
        "我从来没办过这张卡",
        "我的卡被人盗用了",
        "这些消费根本不是我",
        "我的card被盗刷了",
    ],
    ("threat", "en"): [
        "I'm going to kill you",
        "i'll find you and beat your ass",
        "I know where you live",
        "I'll burn your office down",
        "watch your back",
        "i'm gonna come after you",
        "I'll smash your face in",
        "I'm going to make you pay",
    ],
    ("threat", "zh"): [
        "再打来我弄死你",
        "我要砍死你们",
        "信不信我找人收拾你",
        "我去你们公司砸了你们",
        "我要杀了你",
        "你给我等着",
        "大不了同归于尽",
        "我拿刀去找你们",
    ],
    ("regulator", "en"): [
        "I'm reporting this to the CFPB",
        "I will contact the attorney general",
        "i already wrote to the consumer financial protection bureau",
        "the regulators will hear about this",
        "I'm calling the FTC",
        "I'll contact the state banking department",
        "the OCC will get a letter from me",
        "I'm going to report you to the government",
    ],
    ("regulator", "zh"): [
        "我要打12378",
        "我去银保监会",
        "我会向金融监管总局反映",
        "我要找监管部门",
        "我已经联系了人民银行",
        "国家金融监督管理总局会处理你们",
        "我向监管投诉",
        "我会打12363",
    ],
    ("complaint", "en"): [
        "I want to file a complaint",
        "i'm going to complain about you",
        "put me through to the complaints department",
        "I'd like to make a formal complaint",
        "I'll report you to the better business bureau",
        "let me complain",
        "I'm lodging a complaint",
        "this is going to the BBB",
    ],
    ("complaint", "zh"): [
        "我要投诉你们",
        "我要举报你们",
        "我去12315反映你们乱收费",
        "我要去消协",
        "投诉电话是多少",
        "我找媒体曝光你们",
        "我会去黑猫投诉",
        "我要投诉这个催收员",
    ],
    ("cease_all", "en"): [
        "stop contacting me",
        "leave me alone, don't contact me in any way",
        "do not contact me again",
        "cease all communication",
        "stop calling and texting me",
        "no calls or texts please",
        "cease and desist all contact",
        "please never contact me again",
    ],
    ("cease_all", "zh"): [
        "不要再联系我",
        "以后别联系我了",
        "请停止联系我",
        "别再骚扰我了",
        "电话短信都不要再发了",
        "从现在开始不要联系我",
        "不要再打扰我",
        "你们永远别联系我",
    ],
    ("cease_calls", "en"): [
        "stop calling me",
        "don't call me again",
        "Please STOP CALLING!!",
        "dont call this number anymore",
        "no more calls",
        "put me on your do not call list",
        "quit calling me",
        "never call me again",
        "take me off your list and stop calling",
        "please remove my number",
    ],
    ("cease_calls", "zh"): [
        "别再打电话了",
        "不要再打了",
        "以后别给我打电话",
        "不要再给我打电话了",
        "别打了行吗",
        "请勿再致电",
        "我不想再接到你们的电话",
        "停止给我打电话",
        "把我的号码删掉",
    ],
}

# Must match nothing at all: idioms, negations, the customer's own family, everyday collections talk.
NEAR_MISSES = [
    "那我现在该怎么办？",
    "I'm dying to get this sorted",
    "this is killing me",
    "these late fees are killing me",
    "I'm dead tired, can we do this later",
    "my phone died yesterday",
    "I'm not going to sue anyone",
    "I don't have a lawyer",
    "I don't need a lawyer for this",
    "are you going to sue me?",
    "I'm not paying that, so sue me",
    "I'm trying to avoid bankruptcy",
    "this bill is bankrupting me",
    "my father passed away so money is tight",
    "my dad got sick and he passed away, so I fell behind",
    "my grandmother passed away and I paid for the funeral",
    "he passed the phone to me",
    "my card was declined",
    "my card wasn't stolen, I just forgot",
    "it's not fraud, I made those purchases",
    "I'll get you the money on Friday",
    "I'll find you the receipt",
    "I'll shoot you an email with the details",
    "I'm not complaining, I just forgot",
    "no complaints, thanks",
    "don't call me before 5pm",
    "please don't call me at work",
    "can you call me back tomorrow",
    "I don't want to die in debt",
    "I don't want to live with my parents again",
    "I'm tired of living paycheck to paycheck",
    "I live 5 kms from the branch",
    "if I wasn't sure I wouldn't say it",
    "I got served at the restaurant",
    "I'm on the roof fixing the gutter",
    "Phone died, sorry, can you repeat",
    "Michael passed the exam",
    "我想反映一下情况",
    "张经理去外地出差了",
    "I don't want to be around pushy people",
    "is this going on my credit report",
    "what happens if I don't pay",
    "I lost my job last month",
    "我爸去世了，所以最近手头紧",
    "我爸他去年走了，所以没还上",
    "家里老人去世了，忙着办丧事",
    "想死你了",
    "笑死我了",
    "累死了，明天再说",
    "气死我了，利息怎么这么高",
    "你们会起诉我吗",
    "有本事去告我",
    "我都快破产了",
    "不是盗刷，是我自己刷的",
    "我不想投诉，只是问问",
    "现在别打了，我在开会",
    "别打我单位电话",
    "晚点再打给我",
    "其他没了",
    "他不在家，我是他老婆",
    "会不会上人民银行征信",
    "我打算下个月还",
    "我想分期",
    "我不想活得这么累，能不能少还点",
    "公司活不下去了，工资发不出来",
    "去死吧你们",
    "打死我也不还",
    # numbers: a hotline number counts only with a verb, never inside a card, an ID or an amount
    "卡号6222 0212 3456 7890 128，安全码是359",
    "身份证号11010519491231002X，护照号E12345678",
    "我欠了12378元",
    "I owe 12378 dollars",
    "my zip code is 12345",
]


def build(tmp_path, **config):
    return RiskPhraseMatcher.create(
        {**RiskPhraseMatcher.get_default_config(), **config},
        LocalModelStorage(tmp_path),
        Resource("RiskPhraseMatcher"),
        ExecutionContext(GraphSchema({}), "test"),
    )


@pytest.fixture(scope="module")
def matcher(tmp_path_factory):
    return build(tmp_path_factory.mktemp("risk"))


def categories(matcher, text):
    return [m.category for m in matcher.find(text)]


@pytest.mark.parametrize(
    "category,text", [(category, text) for (category, _), texts in MATCHES.items() for text in texts]
)
def test_phrase_wins_its_category(matcher, category, text):
    assert categories(matcher, text)[:1] == [category]


def test_at_least_eight_phrasings_per_category_and_language():
    phrases = load_risk_phrases(ROOT / "data" / "risk_phrases.yml")
    assert set(INTENTS) == set(phrases["categories"])
    for category in INTENTS:
        for language in ("en", "zh"):
            assert len(MATCHES[(category, language)]) >= 8, (category, language)


@pytest.mark.parametrize("text", NEAR_MISSES)
def test_near_miss_matches_nothing(matcher, text):
    assert matcher.find(text) == []


def parse(matcher, text, intent="inform", confidence=0.41):
    ranking = [{"name": intent, "confidence": confidence}, {"name": "affirm", "confidence": 0.2}]
    message = Message({TEXT: text, INTENT: ranking[0], INTENT_RANKING_KEY: ranking, ENTITIES: []})
    matcher.process([message])
    return message


def test_match_overrides_the_classifier(matcher):
    text = "I lost my job and honestly some days I don't want to live anymore"
    message = parse(matcher, text, intent="reason_job_loss", confidence=0.62)
    assert message.get(INTENT) == {"name": "self_harm", "confidence": 1.0}
    assert message.get(INTENT_RANKING_KEY) == [
        {"name": "self_harm", "confidence": 1.0},
        {"name": "reason_job_loss", "confidence": 0.62},
        {"name": "affirm", "confidence": 0.2},
    ]
    assert message.get(ENTITIES) == [{
        "entity": "risk_phrase", "value": "I don't want to live anymore", "role": "self_harm",
        "start": 37, "end": 65, "confidence": 1.0, "extractor": "RiskPhraseMatcher",
    }]
    assert text[37:65] == "I don't want to live anymore"


def test_classifier_intent_already_first_is_not_repeated(matcher):
    message = parse(matcher, "我要投诉你们", intent="complaint", confidence=0.5)
    assert message.get(INTENT) == {"name": "complaint", "confidence": 1.0}
    assert [r["name"] for r in message.get(INTENT_RANKING_KEY)] == ["complaint", "affirm"]
    assert [(e["value"], e["role"], e["start"], e["end"]) for e in message.get(ENTITIES)] == [("投诉", "complaint", 2, 4)]


def test_no_match_leaves_the_message_alone(matcher):
    message = parse(matcher, "那我现在该怎么办？", intent="vulnerable", confidence=0.3)
    assert message.get(INTENT) == {"name": "vulnerable", "confidence": 0.3}
    assert [r["name"] for r in message.get(INTENT_RANKING_KEY)] == ["vulnerable", "affirm"]
    assert message.get(ENTITIES) == []


def test_entities_of_other_extractors_are_kept(matcher):
    message = Message({TEXT: "stop calling me", ENTITIES: [{"entity": "date", "value": "2024-01-05"}]})
    matcher.process([message])
    assert [e["entity"] for e in message.get(ENTITIES)] == ["date", "risk_phrase"]


@pytest.mark.parametrize("text,expected", [
    # self_harm wins, then bereavement, legal, fraud, threat, regulator, complaint, cease_all, cease_calls
    ("stop calling me, I'll sue you and I want to die", ["self_harm", "legal", "cease_calls"]),
    ("he passed away, talk to our lawyer", ["bereavement", "legal"]),
    ("my card was stolen and I'm filing a complaint", ["fraud", "complaint"]),
    ("I'll report you to the CFPB", ["regulator", "complaint"]),
    ("stop calling me, I'm going to file a complaint", ["complaint", "cease_calls"]),
    ("stop calling me, in fact stop contacting me", ["cease_all", "cease_calls"]),
    ("我要打12378投诉你们", ["regulator", "complaint"]),
    ("别再打电话了，我要投诉", ["complaint", "cease_calls"]),
    ("不想活了，我要起诉你们", ["self_harm", "legal"]),
])
def test_priority_and_every_category_reported(matcher, text, expected):
    assert categories(matcher, text) == expected
    message = parse(matcher, text)
    assert message.get(INTENT)["name"] == INTENTS[expected[0]]
    assert [e["role"] for e in message.get(ENTITIES)] == expected


@pytest.mark.parametrize("text,category,value", [
    # mixed messages run both languages; the English view still sees "lawyer" between CJK characters
    ("我要找lawyer告你们", "legal", "lawyer"),
    ("stop calling me 别再打了", "cease_calls", "stop calling me"),
    # the value is the text as written: case, curly quotes, full-width letters and extra spaces kept
    ("I  DON’T   want to live", "self_harm", "I  DON’T   want to live"),
    ("ＳＴＯＰ ＣＡＬＬＩＮＧ ＭＥ", "cease_calls", "ＳＴＯＰ ＣＡＬＬＩＮＧ ＭＥ"),
    ("I WON'T SUE, BUT MY LAWYER WILL CALL", "legal", "MY LAWYER"),
    ("我的卡被 盗刷了", "fraud", "被 盗刷"),
    # overlapping phrases of one category make one entity
    ("卡被盗刷了", "fraud", "被盗刷"),
])
def test_values_are_the_customers_words(matcher, text, category, value):
    found = matcher.find(text)
    assert [(m.category, text[m.start:m.end]) for m in found][:1] == [(category, value)]
    message = parse(matcher, text)
    assert message.get(ENTITIES)[0]["value"] == value


def test_mixed_message_matches_in_both_languages(matcher):
    text = "stop calling me 不要再联系我"
    assert categories(matcher, text) == ["cease_all", "cease_calls"]


def test_template_expansion():
    assert _expand([["he", "she"], ["", "sadly"], "passed away"], " ") == [
        "he passed away", "he sadly passed away", "she passed away", "she sadly passed away",
    ]
    assert _expand([["他", "她"], ["", "已经"], "去世了"], "") == ["他去世了", "他已经去世了", "她去世了", "她已经去世了"]


def test_unquoted_yes_or_no_in_a_template_is_refused():
    with pytest.raises(ValueError, match="quote"):
        _expand(yaml.safe_load("[[not, no], lawyer]"), " ")


def test_phrase_file_must_give_every_category_a_priority(tmp_path):
    path = tmp_path / "phrases.yml"
    path.write_text(yaml.safe_dump({
        "priority": ["legal"],
        "categories": {"legal": {"intent": "legal"}, "fraud": {"intent": "fraud"}},
    }))
    with pytest.raises(ValueError, match="priority"):
        load_risk_phrases(path)


def test_custom_phrase_file(tmp_path):
    path = tmp_path / "phrases.yml"
    path.write_text(yaml.safe_dump({
        "priority": ["legal"],
        "categories": {"legal": {"intent": "legal", "en": {"match": ["my barrister"]}}},
    }))
    matcher = build(tmp_path, phrases_file=str(path))
    assert categories(matcher, "ask My Barrister") == ["legal"]
    assert categories(matcher, "talk to my lawyer") == []


TINY_NLU = """
version: "3.1"
nlu:
- intent: affirm
  examples: |
    - yes
    - yeah that's me
    - speaking
    - correct
    - 是我
    - 对
    - 是的
    - 没错
- intent: reason_job_loss
  examples: |
    - i lost my job
    - got laid off last month
    - my company let me go
    - i'm unemployed now
    - 我失业了
    - 公司裁员了
    - 我被辞退了
    - 工作丢了
- intent: ask_how_to_pay
  examples: |
    - how do i pay
    - where can i make a payment
    - how can i pay this
    - what are the ways to pay
    - 怎么还款
    - 在哪里还钱
    - 还款方式有哪些
    - 我该怎么还
"""


def test_trains_and_overrides_in_a_real_pipeline(tmp_path):
    """The project's config.yml, trained on a tiny data set, loaded with Agent: the matcher has the last word."""
    nlu = tmp_path / "nlu.yml"
    nlu.write_text(TINY_NLU)
    config = yaml.safe_load((ROOT / "config.yml").read_text())
    assert config["pipeline"][-1] == {"name": "bot.risk_matcher.RiskPhraseMatcher"}
    model = train_nlu(str(ROOT / "config.yml"), str(nlu), str(tmp_path / "models"), fixed_model_name="risk")
    agent = Agent.load(model)

    async def parse_all(texts):
        return [await agent.parse_message(text) for text in texts]

    job, complaint, plain = asyncio.run(parse_all([
        "I lost my job and honestly some days I don't want to live anymore",
        "我要投诉你们",
        "i lost my job",
    ]))
    assert job["intent"] == {"name": "self_harm", "confidence": 1.0}
    assert job["intent_ranking"][0] == {"name": "self_harm", "confidence": 1.0}
    assert [(e["entity"], e["role"], e["value"]) for e in job["entities"]] == [
        ("risk_phrase", "self_harm", "I don't want to live anymore")
    ]
    assert complaint["intent"] == {"name": "complaint", "confidence": 1.0}
    assert plain["intent"]["name"] == "reason_job_loss"
    assert plain["intent"]["confidence"] < 1.0
    assert plain["entities"] == []
