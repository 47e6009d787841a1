"""Customer-facing texts in both languages (texts.yml).

A text is either `{en, zh}` or, where the channel changes the words, a set of variants keyed by
`voice_inbound`, `voice_outbound`, `voice`, `sms_inbound`, `sms_outbound`, `sms` and `any`, each `{en, zh}`;
the most specific variant for the conversation wins."""
from functools import lru_cache
from pathlib import Path
from typing import Optional

import yaml

from kindly.settings import settings

LANGUAGES = ("en", "zh")


@lru_cache(maxsize=None)
def all_texts() -> dict:
    return yaml.safe_load(Path(__file__).with_name("texts.yml").read_text(encoding="utf-8"))


def variant(entry: dict, channel: Optional[str], direction: Optional[str]) -> dict:
    if "en" in entry:
        return entry
    for name in (f"{channel}_{direction}", channel, "any"):
        if name in entry:
            return entry[name]
    raise KeyError(f"no variant of this text for {channel} {direction}: {sorted(entry)}")


def say(key: str, language: str, channel: Optional[str] = None, direction: Optional[str] = None, **params) -> str:
    """The text in the language and channel; {bank} and {callback} are filled in unless given."""
    params = {"bank": settings.bank_name_in(language), "callback": settings.callback_number, **params}
    return variant(all_texts()[key], channel, direction)[language].format(**params)
