"""Every text exists in both languages and fits its channel (kindly/texts.yml)."""
import re
import string

import pytest

from kindly.texts import all_texts, say, variant

# Said only on calls (channels/voice.py and the voice-only steps).
VOICE_ONLY = {"recording_notice", "ask_dob_keypad", "voicemail", "silence_prompt", "silence_close", "agent_unavailable",
              "handoff_voice", "opt_out_confirmed_voice", "failure_apology_transfer", "callback_connecting"}
# Said only by SMS.
SMS_ONLY = {"handoff_sms", "sms_help", "sms_opted_in", "sms_opted_out", "promise_summary_sms", "plan_single", "plan_installment",
            "reminder_sms_before", "reminder_sms_due"}
# The US line is reached by calling or texting 988: the crisis text names both verbs on both channels.
RIGHT_VERB_FOR_THE_LINE = {"crisis_line_US", "crisis_line_CN"}
SMS_MUST_NOT_SAY = re.compile(r"\b(call|calling|called|speak|speaking|hear|listen)\b|来电|接听|听", re.IGNORECASE)
CALL_MUST_NOT_SAY = re.compile(r"\btext(s|ing)?\b|\breply\b|回复", re.IGNORECASE)
PAIRS = [(channel, direction) for channel in ("voice", "sms") for direction in ("inbound", "outbound")]
PARAMS = {name: "X" for name in ("name", "last4", "days", "balance", "minimum", "date", "part", "options", "latest", "count",
                                 "amount", "last_part", "total", "crisis_line", "plan", "reference", "contact_person")}


def texts_said_on(channel: str):
    for key, entry in all_texts().items():
        if (channel == "sms" and key in VOICE_ONLY) or (channel == "voice" and key in SMS_ONLY) or key in RIGHT_VERB_FOR_THE_LINE:
            continue
        for direction in ("inbound", "outbound"):
            try:
                chosen = variant(entry, channel, direction)
            except KeyError:
                continue
            yield key, direction, chosen


@pytest.mark.parametrize("key", sorted(all_texts()))
def test_every_text_exists_in_english_and_chinese(key):
    entry = all_texts()[key]
    variants = [entry] if "en" in entry else list(entry.values())
    for each in variants:
        assert set(each) == {"en", "zh"}, key
        fields = [{f for _, f, _, _ in string.Formatter().parse(each[lang]) if f} for lang in ("en", "zh")]
        assert fields[0] == fields[1], f"{key}: the languages take different placeholders {fields}"


@pytest.mark.parametrize("key", sorted(set(all_texts()) - VOICE_ONLY - SMS_ONLY))
def test_shared_texts_exist_for_both_channels_and_directions(key):
    for channel, direction in PAIRS:
        variant(all_texts()[key], channel, direction)


def test_sms_never_talks_about_calls():
    for key, direction, chosen in texts_said_on("sms"):
        for language in ("en", "zh"):
            assert not SMS_MUST_NOT_SAY.search(chosen[language]), f"SMS {key} ({direction}, {language}): {chosen[language]}"


def test_calls_never_talk_about_texting_back():
    for key, direction, chosen in texts_said_on("voice"):
        for language in ("en", "zh"):
            assert not CALL_MUST_NOT_SAY.search(chosen[language]), f"call {key} ({direction}, {language}): {chosen[language]}"


def test_an_inbound_caller_is_thanked_not_asked_for():
    opening = say("opening_intro", "en", "voice", "inbound") + " " + say("ask_for_customer", "en", "voice", "inbound", name="Alex")
    assert "Thanks for calling" in opening and "May I speak with" not in opening
    assert "感谢致电" in say("opening_intro", "zh", "voice", "inbound")


@pytest.mark.parametrize("language, stop", [("en", "Reply STOP"), ("zh", "回复退订")])
def test_every_bot_initiated_sms_says_how_to_opt_out(language, stop):
    first_message = say("ask_for_customer", language, "sms", "outbound", name="Alex")
    assert first_message.endswith(stop + (" to opt out." if language == "en" else "可退订。"))
    assert stop in say("promise_summary_sms", language, "sms", plan="X", reference=1)


def test_chinese_texts_name_the_bank_in_chinese():
    assert "海港银行" in say("opening_intro", "zh", "sms", "outbound") and "Harbor" not in say("opening_intro", "zh", "sms", "outbound")


def test_the_voicemail_is_a_limited_content_message():
    """12 CFR 1006.2(j): the business name, a request to reply, a natural person and a phone number; no customer
    name and nothing beyond the optional parts (no thanks, no word of a debt)."""
    for language in ("en", "zh"):
        text = say("voicemail", language, contact_person="Casey Brooks")
        assert "Casey Brooks" in text and "+18005550199" in text
        assert "{name}" not in all_texts()["voicemail"][language]
        assert not re.search(r"thank|谢谢|debt|欠|逾期|还款|payment", text, re.IGNORECASE)
