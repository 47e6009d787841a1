"""Whole conversations in both languages, through the real engine and action server, checked by the API.
The customer lines are written the way people talk, not copied from the training data."""
from datetime import date
from decimal import Decimal

import pytest

from tests.conftest import ZH_ACCOUNT
from tests.e2e.helpers import Conversation, assert_nothing_disclosed, new_account

EN = dict(language="en")
ZH = ZH_ACCOUNT

SCRIPTS = {
    "installments": {
        "en": ["yeah this is alex", "march 5th 1985", "honestly i got laid off a few weeks back",
               "could i spread it over 6 months", "in two weeks", "yes that works"],
        "zh": ["对，我就是", "1988年2月3号", "公司裁员我上个月被辞退了", "能不能分6期还", "两周后", "好的没问题"],
    },
    "deferral": {
        "en": ["speaking", "3/5/1985", "i lost my job last month and im still looking",
               "can you give me more time, like pay the minimum in 3 weeks", "yes please"],
        "zh": ["是我", "八八年二月三号", "我失业了，还在找工作", "能不能延期一下，三周后先还最低还款", "可以"],
    },
}


def run(api, account_overrides, lines) -> Conversation:
    convo = Conversation(api, new_account(api, **account_overrides)).start()
    for line in lines:
        convo.say(line)
    return convo


@pytest.mark.parametrize("language", ["en", "zh"])
def test_promise_with_installments(api, language):
    convo = run(api, EN if language == "en" else ZH, SCRIPTS["installments"][language])
    assert_nothing_disclosed(convo.said[:2], convo.account)  # the opening and the question for the date of birth
    record = convo.record()
    assert record["verified"] and record["reason_code"] == "job_loss" and record["disposition"] == "promise_to_pay"
    [promise] = convo.promises()
    balance = Decimal(convo.account["balance"])
    assert promise["plan_type"] == "installment" and promise["installments"] == 6
    assert Decimal(promise["total"]) == balance == sum(Decimal(p["amount"]) for p in promise["schedule"])
    assert abs((date.fromisoformat(promise["due_date"]) - date.today()).days - 14) <= 1  # account time zone vs ours
    assert promise["status"] == "open" and promise["currency"] == convo.account["currency"]


@pytest.mark.parametrize("language", ["en", "zh"])
def test_deferral_for_job_loss(api, language):
    convo = run(api, EN if language == "en" else ZH, SCRIPTS["deferral"][language])
    [promise] = convo.promises()
    assert promise["plan_type"] == "deferral"
    assert Decimal(promise["amount"]) == Decimal(convo.account["minimum_due"])
    assert 19 <= (date.fromisoformat(promise["due_date"]) - date.today()).days <= 22
    assert convo.record()["reason_code"] == "job_loss"


@pytest.mark.parametrize("language, line", [("en", "she's at work right now, i'm her husband"), ("zh", "他不在家，我是他爱人")])
def test_third_party_gets_a_limited_message(api, language, line):
    convo = run(api, EN if language == "en" else ZH, [line])
    assert convo.ended and convo.record()["disposition"] == "third_party"
    assert_nothing_disclosed(convo.said, convo.account)
    # A text message never asks to be called: it asks the customer to contact the bank.
    assert ("contact Harbor Bank" in convo.said[-1][0]) if language == "en" else ("联系海港银行" in convo.said[-1][0])


@pytest.mark.parametrize("language, line", [("en", "sorry there's nobody here with that name"), ("zh", "你打错电话了，我不认识这个人")])
def test_wrong_number_is_marked(api, language, line):
    convo = run(api, EN if language == "en" else ZH, [line])
    assert convo.record()["disposition"] == "wrong_number"
    assert convo.fresh_account()["flags"]["wrong_number"] is True
    assert_nothing_disclosed(convo.said, convo.account)


@pytest.mark.parametrize("language, lines", [
    ("en", ["yes", "january 1st 1970", "12/12/1999", "its 1980-07-04"]),
    ("zh", ["是的", "1970年1月1日", "九九年十二月十二号", "19800704"]),
])
def test_verification_lockout(api, language, lines):
    convo = run(api, EN if language == "en" else ZH, lines)
    record = convo.record()
    assert convo.ended and record["disposition"] == "verification_failed" and not record["verified"]
    assert_nothing_disclosed(convo.said, convo.account)
    transcript = " ".join(t["text"] for t in record["transcript"])
    for raw in ["1970", "1999", "1980", "九九年"]:
        assert raw not in transcript


@pytest.mark.parametrize("language, lines", [
    ("en", ["yes it's me", "march 5 1985", "wait that number is wrong, i returned the laptop and got charged anyway"]),
    ("zh", ["我是", "1988年2月3日", "这个金额不对啊，我退货了你们还照样扣钱"]),
])
def test_dispute_is_handed_off(api, language, lines):
    convo = run(api, EN if language == "en" else ZH, lines)
    [handoff] = convo.handoffs()
    assert handoff["reason"] == "dispute" and handoff["status"] == "waiting"
    assert "Identity verified." in handoff["summary"] and "NOT verified" not in handoff["summary"]
    assert convo.record()["disposition"] == "handoff"
    assert convo.fresh_account()["flags"]["dispute"] is True


@pytest.mark.parametrize("language, line", [("en", "go to hell you bloodsucking parasites"), ("zh", "滚蛋，你们这帮吸血鬼")])
def test_abuse_is_handed_off(api, language, line):
    convo = run(api, EN if language == "en" else ZH, ["yes", line])
    [handoff] = convo.handoffs()
    assert handoff["reason"] == "abusive"
    assert_nothing_disclosed(convo.said, convo.account)


@pytest.mark.parametrize("language, line", [("en", "take me off your list and stop calling"), ("zh", "以后别再给我打电话了")])
def test_opt_out(api, language, line):
    convo = run(api, EN if language == "en" else ZH, [line])
    assert convo.ended and convo.record()["disposition"] == "opted_out"
    # "Stop calling me", said by text, stops calls; texts go on until the customer says STOP.
    assert [o["channel"] for o in convo.fresh_account()["opt_outs"]] == ["voice"]


@pytest.mark.parametrize("language, lines", [
    ("en", ["that's me", "5 march 1985", "i just forgot honestly", "i'll pay $300 this friday", "yep"]),
    ("zh", ["是我", "一九八八年二月三日", "忘记了不好意思", "我这周五先还500块", "对"]),
])
def test_partial_payment_with_amount_and_date(api, language, lines):
    convo = run(api, EN if language == "en" else ZH, lines)
    [promise] = convo.promises()
    assert promise["plan_type"] == "partial"
    assert Decimal(promise["amount"]) == (Decimal("300") if language == "en" else Decimal("500"))
    assert date.fromisoformat(promise["due_date"]).weekday() == 4


def test_amount_over_the_balance_is_countered_with_the_full_balance(api):
    convo = run(api, EN, ["yes", "march 5 1985", "forgot", "i can pay 5000 dollars tomorrow"])
    assert "more than your balance" in " ".join(convo.said[-1])
    convo.say("sure")
    [promise] = convo.promises()
    assert promise["plan_type"] == "full" and Decimal(promise["amount"]) == Decimal("1000.00")


def test_self_harm_gets_the_crisis_line_at_once(api):
    convo = run(api, EN, ["yes", "march 5 1985", "honestly i don't want to be alive anymore"])
    assert "988" in " ".join(convo.said[-1])
    assert convo.handoffs()[0]["reason"] == "vulnerable"


def test_two_misunderstood_turns_go_to_a_person(api):
    convo = run(api, EN, ["yes", "march 5 1985", "forgot", "qwzx vbnm plok", "zzkq fjdh ttyw"])
    assert convo.handoffs()[0]["reason"] == "bot_failure"


def test_garbage_and_a_huge_message_get_a_polite_reply(api):
    convo = Conversation(api, new_account(api)).start()
    assert convo.say("\x00\x01\ufffd" * 50)
    assert convo.say("blah " * 2000)
    assert all(len(t["text"]) <= 500 for t in convo.record()["transcript"])


@pytest.mark.parametrize("language, numeric_dob", [("en", "3/5/1985"), ("zh", "3/2/1988")])
def test_numeric_date_of_birth_is_read_in_the_account_locale(api, language, numeric_dob):
    """US accounts read month first; CN accounts day first (the account's country travels as metadata)."""
    convo = run(api, EN if language == "en" else ZH, ["yes", numeric_dob])
    assert convo.record()["verified"]
