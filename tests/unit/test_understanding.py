"""Nonsense, the holder's own name, confirmation thresholds and the reach of an opt-out (kindly.understanding)."""
import pytest

from kindly.policy import load_policy
from kindly.understanding import is_nonsense, names_account_holder, needs_confirmation, opt_out_reach

ACT_ABOVE = load_policy().act_above


@pytest.mark.parametrize("text", [
    "!!!!", "?? ??", "...", "@#$%^&*", "😀😀😀", "啊啊啊啊啊", "的的的的", "aaaaaa", "asdf", "asdfgh", "jkjkjkjk",
    "qwrtp", "zxcvbnm", "sdfsdfsdfs", "hjkl", "   ", "~~~~~", "。。。",
])
def test_nonsense(text):
    assert is_nonsense(text)


@pytest.mark.parametrize("text", [
    "yes", "no", "ok", "嗯嗯嗯", "好好好", "对对对", "19850305", "1111", "$200", "hi", "是我", "wrong number",
    "help", "why", "sorry what", "what", "hmm", "yep", "sure", "stop", "a", "I", "分期", "tmr", "pls",
    "salary late", "next friday",
])
def test_real_answers_are_not_nonsense(text):
    assert not is_nonsense(text)


@pytest.mark.parametrize("text, name", [
    ("Michael", "Michael Turner"),
    ("Michael speaking", "Michael Turner"),
    ("yeah this is michael", "Michael Turner"),
    ("Turner here", "Michael Turner"),
    ("王丽就是我", "王丽"),
    ("王女士是我", "王丽"),
    ("我是王先生", "王建国"),
    ("建国，什么事", "王建国"),
    ("对，王丽", "王丽"),
])
def test_the_holder_names_themselves(text, name):
    assert names_account_holder(text, name)


@pytest.mark.parametrize("text, name", [
    ("who is Michael?", "Michael Turner"),
    ("Michael's not here, I'm his wife", "Michael Turner"),
    ("there's no Michael here", "Michael Turner"),
    ("Mike", "Michael Turner"),
    ("谁是王丽？", "王丽"),
    ("王丽不在", "王丽"),
    ("我是她老公", "王丽"),
    ("hello", "Michael Turner"),
    ("丽", "王丽"),
])
def test_other_mentions_do_not_confirm(text, name):
    assert not names_account_holder(text, name)


@pytest.mark.parametrize("intent, confidence, matched, expected", [
    ("legal", 0.44, False, True),
    ("fraud", 0.56, False, True),
    ("already_paid", 0.43, False, True),
    ("legal", 0.99, False, False),
    ("legal", 0.3, True, False),       # a reviewed risk phrase matched: act
    ("affirm", 0.2, False, False),      # not high-stakes
    ("request_human", 0.4, False, False),
])
def test_high_stakes_readings_are_confirmed_below_their_threshold(intent, confidence, matched, expected):
    assert needs_confirmation(intent, confidence, ACT_ABOVE, matched) is expected


def test_every_high_stakes_intent_has_a_threshold():
    assert set(ACT_ABOVE) == {"legal", "fraud", "dispute", "deceased", "already_paid", "refuse_to_pay", "wrong_number", "third_party"}


@pytest.mark.parametrize("text, role, channel, reach", [
    ("stop calling me", None, "sms", ("voice",)),
    ("stop calling me", None, "voice", ("voice",)),
    ("don't ring me again", None, "voice", ("voice",)),
    ("stop contacting me", None, "sms", ("voice", "sms")),
    ("leave me alone", None, "voice", ("voice", "sms")),
    ("stop texting me", None, "voice", ("sms",)),
    ("no more calls or texts", None, "sms", ("voice", "sms")),
    ("STOP", None, "sms", ("sms",)),
    ("unsubscribe", None, "voice", ("voice",)),
    ("别再打电话了", None, "sms", ("voice",)),
    ("不要再联系我了", None, "voice", ("voice", "sms")),
    ("别给我发短信", None, "voice", ("sms",)),
    ("whatever", "cease_all", "sms", ("voice", "sms")),
    ("whatever", "cease_calls", "sms", ("voice",)),
])
def test_opt_out_reach(text, role, channel, reach):
    assert opt_out_reach(text, role, channel) == reach
