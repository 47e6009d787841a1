"""Checks on what the customer said that the classifier can't make: nonsense, the account holder's own name,
whether a high-stakes reading is certain enough to act on, and how far an opt-out reaches. Pure functions."""
import re
from typing import Optional

CJK = re.compile(r"[\u3400-\u9fff]")
LATIN_WORD = re.compile(r"[a-z]+")
KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
# Repeated, these are real answers ("嗯嗯嗯" is yes), not noise.
MEANINGFUL_REPEATS = set("嗯好对是行哦噢")
# A name in the message is not a confirmation when the message asks about the person or says they aren't here.
NOT_THE_HOLDER = re.compile(
    r"\b(who|who's|whos|not|no|isn't|isnt|aren't|no one|nobody|wife|husband|mother|mom|father|dad|son|daughter|"
    r"brother|sister|friend|colleague|coworker)\b|谁|不是|不在|没有|他|她|老婆|老公|妈|爸|儿子|女儿|同事|朋友",
    re.IGNORECASE,
)
CHINESE_TITLES = ("先生", "女士", "小姐", "太太")
CALL_WORDS = re.compile(r"\b(call|calls|calling|phone|ring|ringing|dial)\b|打电话|来电|电话|打来|打给我", re.IGNORECASE)
TEXT_WORDS = re.compile(r"\b(text|texts|texting|sms|message|messages|messaging)\b|短信|信息|发消息", re.IGNORECASE)
EVERY_CHANNEL_WORDS = re.compile(
    r"\b(contact|contacting|bother|bothering|harass|harassing|leave me alone)\b|联系|骚扰|打扰|任何方式",
    re.IGNORECASE,
)


def is_nonsense(text: str) -> bool:
    """No letters, digits or Chinese at all; one character repeated; or a keyboard mash."""
    compact = "".join(text.split())
    if not compact:
        return True
    if not any(ch.isalnum() for ch in compact):
        return True
    if len(compact) >= 3 and len(set(compact.lower())) == 1 and not compact.isdigit() and compact[0] not in MEANINGFUL_REPEATS:
        return True
    if CJK.search(compact) or any(ch.isdigit() for ch in compact):
        return False
    words = LATIN_WORD.findall(text.lower())
    return len(words) == 1 and _keyboard_mash(words[0])


def _keyboard_mash(word: str) -> bool:
    if len(word) < 4:
        return False
    one_row = any(set(word) <= set(row) for row in KEYBOARD_ROWS) and not set(word) & set("eiou")
    repeated_pair = len(word) >= 6 and len(set(word)) <= 2
    consonant_run = re.search(r"[^aeiouy]{5,}", word) is not None
    return one_row or repeated_pair or consonant_run


def names_account_holder(text: str, full_name: str) -> bool:
    """The speaker says they are the account holder by name: "Michael speaking", "王丽就是我", "王女士是我"."""
    if not text or NOT_THE_HOLDER.search(text):
        return False
    name = full_name.strip()
    if CJK.search(name):
        surname, given = name[0], name[1:]
        return name in text or (len(given) >= 2 and given in text) or any(surname + title in text for title in CHINESE_TITLES)
    lowered = text.lower()
    return any(re.search(rf"\b{re.escape(part)}\b", lowered) for part in name.lower().split() if len(part) >= 2)


def needs_confirmation(intent: str, confidence: float, act_above: dict, matched_phrase: bool) -> bool:
    """A high-stakes reading below its threshold is confirmed with the customer before anything is done."""
    return intent in act_above and not matched_phrase and confidence < float(act_above[intent])


def opt_out_reach(text: str, risk_role: Optional[str], channel: str) -> tuple[str, ...]:
    """Which channels an opt-out covers: "stop calling me" stops calls, "stop contacting me" stops every
    channel, "stop texting me" stops SMS; a bare "stop" covers the channel it was said on."""
    if risk_role == "cease_all" or EVERY_CHANNEL_WORDS.search(text):
        return ("voice", "sms")
    if risk_role == "cease_calls":
        return ("voice",)
    calls, texts = bool(CALL_WORDS.search(text)), bool(TEXT_WORDS.search(text))
    if calls and texts:
        return ("voice", "sms")
    if calls:
        return ("voice",)
    if texts:
        return ("sms",)
    return (channel,)
