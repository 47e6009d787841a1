"""Customer-facing texts in both languages (texts.yml)."""
from functools import lru_cache
from pathlib import Path

import yaml

LANGUAGES = ("en", "zh")


@lru_cache(maxsize=None)
def all_texts() -> dict:
    return yaml.safe_load(Path(__file__).with_name("texts.yml").read_text(encoding="utf-8"))


def say(key: str, language: str, **params) -> str:
    return all_texts()[key][language].format(**params)
