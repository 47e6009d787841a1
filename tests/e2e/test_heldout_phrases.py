"""Every held-out phrasing of the kinds issue 6 is about, in both languages, over signed SMS webhooks: what the bot
does with it. The phrasings are in tests/heldout/nlu_*.yml, which training never reads (and
tests/engine/test_tfidf_classifier.py checks that none of them is in data/)."""
from pathlib import Path

import pytest
import yaml

from tests.e2e.helpers import new_account
from tests.e2e.test_memory_and_safety import (CLARIFY, DOB, ITS_ME, LANG, YES, account_state, assert_nothing_disclosed,
                                               handoffs, no_flags, text)

HELD_OUT = Path(__file__).resolve().parents[1] / "heldout"
# After verification: the handoff each kind leads to.
HANDOFF_REASONS = {
    "legal": "legal", "fraud": "fraud", "dispute": "dispute", "deceased": "deceased", "complaint": "complaint",
    "self_harm": "vulnerable", "vulnerable": "vulnerable", "abuse": "abusive", "request_human": "requested_human",
    "refuse_to_pay": "refuses_to_pay",
}
# Before verification: statements that go to a person with their reason, and set no flag.
UNVERIFIED = ("legal", "fraud", "dispute", "deceased", "complaint")
CRISIS_LINES = {"en": "988", "zh": "12356"}


def phrases(language: str, intent: str) -> list[str]:
    nlu = yaml.safe_load((HELD_OUT / f"nlu_{language}.yml").read_text(encoding="utf-8"))["nlu"]
    [block] = [b for b in nlu if b["intent"] == intent]
    return [line[2:].strip() for line in block["examples"].splitlines() if line.startswith("- ")]


def cases(intents, first: int = 0) -> list:
    return [pytest.param(language, intent, phrase, id=f"{language}-{intent}-{i}")
            for language in ("en", "zh") for intent in intents
            for i, phrase in enumerate(phrases(language, intent)[:first or None])]


def answered(phone: str, said: str, language: str) -> str:
    """The bot's answer, after the customer confirms a reading the bot asked about."""
    return text(phone, YES[language]) if CLARIFY[language] in said else said


def verified(api, language: str) -> dict:
    account = new_account(api, **LANG[language])
    for line in ("hi", ITS_ME[language], DOB[language]):
        text(account["phone"], line)
    return account


def test_every_kind_has_at_least_five_held_out_phrasings_in_each_language():
    for language in ("en", "zh"):
        for intent in [*HANDOFF_REASONS, "already_paid", "promise_reference", "opt_out", "greet", "ask_purpose", "affirm", "inform"]:
            assert len(phrases(language, intent)) >= 5, (language, intent)


@pytest.mark.parametrize("language, intent, phrase", cases(HANDOFF_REASONS))
def test_a_verified_customer_reaches_the_right_person(api, language, intent, phrase):
    account = verified(api, language)
    said = answered(account["phone"], text(account["phone"], phrase), language)
    assert [h["reason"] for h in handoffs(api, account)] == [HANDOFF_REASONS[intent]], said
    if intent == "self_harm":
        assert CRISIS_LINES[language] in said


@pytest.mark.parametrize("language, intent, phrase", cases(UNVERIFIED, first=5))
def test_before_verification_the_statement_reaches_a_person_and_sets_no_flag(api, language, intent, phrase):
    account = new_account(api, **LANG[language])
    opening = text(account["phone"], "hi")
    said = answered(account["phone"], text(account["phone"], phrase), language)
    [handoff] = handoffs(api, account)
    assert handoff["reason"] == HANDOFF_REASONS[intent] and "NOT verified" in handoff["summary"]
    assert no_flags(api, account)
    assert_nothing_disclosed(opening + said, account)


@pytest.mark.parametrize("language, intent, phrase", cases(["already_paid", "promise_reference"]))
def test_payments_and_promises_are_talked_about_not_handed_off(api, language, intent, phrase):
    account = verified(api, language)
    text(account["phone"], "i forgot" if language == "en" else "忘了")
    answered(account["phone"], text(account["phone"], phrase), language)
    record = api.get("/api/conversations", params={"account_id": account["id"]}).json()[-1]
    assert handoffs(api, account) == []
    if intent == "promise_reference":
        assert record["disposition"] != "already_paid" and record["reason_code"] != "already_paid"


@pytest.mark.parametrize("language, intent, phrase", cases(["opt_out"]))
def test_an_opt_out_is_honoured_from_whoever_answers(api, language, intent, phrase):
    account = new_account(api, **LANG[language])
    text(account["phone"], phrase)
    assert account_state(api, account)["opt_outs"], phrase


@pytest.mark.parametrize("language, intent, phrase", cases(["greet", "ask_purpose", "out_of_scope"]))
def test_an_opening_is_never_acted_on(api, language, intent, phrase):
    account = new_account(api, **LANG[language])
    said = text(account["phone"], phrase)
    assert no_flags(api, account) and all(h["reason"] == "bot_failure" for h in handoffs(api, account))
    assert_nothing_disclosed(said, account)


@pytest.mark.parametrize("language, intent, phrase", cases(["affirm"]))
def test_the_right_party_is_asked_to_verify(api, language, intent, phrase):
    account = new_account(api, **LANG[language])
    text(account["phone"], "hi")
    said = text(account["phone"], phrase)
    assert ("date of birth" in said) if language == "en" else ("出生日期" in said), said
