"""Masking for logs and transcripts, and the keyed hash that stands in for a stored date of birth."""
import hashlib
import hmac
import re
from datetime import date

from bot.normalize import find_entities
from kindly.settings import settings

# Digit boundaries, not \b: Chinese characters count as word characters, so "卡号6222..." has no \b.
CARD_NUMBER = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}(\d{4})(?!\d)")
CN_ID_NUMBER = re.compile(r"(?<!\d)\d{17}[\dXx](?![\dXx])")
US_SSN = re.compile(r"(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)")
DOB_WITHHELD = "[date of birth withheld]"
# A date this many years back or more is treated as a possible date of birth.
DOB_AGE_YEARS = 10


def dob_hmac(dob: date) -> str:
    return hmac.new(settings.secret_key.encode(), dob.isoformat().encode(), hashlib.sha256).hexdigest()


def dob_matches(dob: date, stored_hmac: str) -> bool:
    return hmac.compare_digest(dob_hmac(dob), stored_hmac)


def mask_text(text: str, today: date) -> str:
    """Mask card numbers (keep last 4), national IDs and anything that reads as a date of birth."""
    text = CN_ID_NUMBER.sub("[ID withheld]", text)
    text = US_SSN.sub("[ID withheld]", text)
    text = CARD_NUMBER.sub(lambda m: f"[card ending {m.group(1)}]", text)
    for entity in sorted(find_entities(text, today), key=lambda e: e["start"], reverse=True):
        if entity["entity"] == "date" and date.fromisoformat(entity["value"]).year <= today.year - DOB_AGE_YEARS:
            text = text[: entity["start"]] + DOB_WITHHELD + text[entity["end"] :]
    return text
