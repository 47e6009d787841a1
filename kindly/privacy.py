"""Masking for logs and transcripts, and the keyed hash that stands in for a stored date of birth.

Masking finds candidates with regular expressions in both languages and confirms them with python-stdnum's
checks (Luhn for cards, the CN resident ID checksum, the US SSN rules). A value after a label ("cvv", "ssn",
"护照号", "密码是") is masked whatever its checksum says: the customer has told us what it is.
(presidio-analyzer's pattern recognizers would bring spaCy into the app venv, and their \\b-bounded patterns miss a
number written straight after a Chinese word, as in "卡号6222...".)"""
import base64
import functools
import hashlib
import hmac
import os
import re
import secrets
from datetime import date
from typing import Iterator, NamedTuple

from stdnum import luhn
from stdnum.cn import ric
from stdnum.us import ssn

from bot.normalize import find_entities
from kindly.settings import settings

DOB_WITHHELD = "[date of birth withheld]"
ID_WITHHELD = "[ID withheld]"
CODE_WITHHELD = "[code withheld]"
# A date this many years back or more is treated as a possible date of birth.
DOB_AGE_YEARS = 10

# ---------------------------------------------------------------------------------------------------------------
# The date of birth is stored as "hmac$<key id>$<salt>$<HMAC-SHA256(DOB key, salt + date)>". The key never lives in the
# database: DOB_HASH_KEY (production refuses to start without it, and every machine must share it) or, locally,
# 32 random bytes made at first use in var/dob-hash.key. A copy of the database alone cannot be searched for a
# date of birth: without the key each of the ~40,000 plausible dates is a guess at a 256-bit key. (A deliberately
# slow hash was tried: at 45 ms it slowed a search with the key to half an hour per account, but an import of a
# million new accounts to 7 hours. Keeping the key apart protects more, for nothing.) The random salt keeps two
# accounts born on one day from sharing a value. The key id (4 hex digits derived from the key) tells a wrong or
# lost key from a wrong date: a check under another key raises DobKeyMismatch instead of counting as a failed
# attempt, and the gateway refuses to start (check_dob_key).
# Rows written earlier still verify: "scrypt$<log2 n>$<salt>$<hash>" and the plain 64-hex HMAC, both keyed with
# SECRET_KEY; either is replaced by the current form whenever the account's date of birth is written again.
_SALT_BYTES = 6
_SCRYPT_R, _SCRYPT_P = 8, 1


@functools.cache
def _dob_key() -> bytes:
    if settings.dob_hash_key:
        return settings.dob_hash_key.encode()
    if settings.is_production:  # machines sharing one database must share the key: never make one up there
        raise RuntimeError("DOB_HASH_KEY is not set")
    path = settings.dob_hash_key_file
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written aside, then linked into place: of two processes starting at once, both end up reading one key.
        draft = path.with_name(f".{path.name}.{os.getpid()}")
        with os.fdopen(os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
            handle.write(secrets.token_hex(32))
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_bytes().strip()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _digest(dob: date, salt: bytes) -> bytes:
    return hmac.new(_dob_key(), salt + dob.isoformat().encode(), hashlib.sha256).digest()


class DobKeyMismatch(RuntimeError):
    """A stored date of birth was hashed under another key than DOB_HASH_KEY (or var/dob-hash.key)."""


@functools.cache
def _key_id() -> str:
    return hmac.new(_dob_key(), b"kindly date-of-birth key id", hashlib.sha256).hexdigest()[:4]


def dob_hmac(dob: date) -> str:
    """The value stored for a date of birth; a new random salt each time, so compare with dob_matches."""
    salt = os.urandom(_SALT_BYTES)
    return f"hmac${_key_id()}${_b64(salt)}${_b64(_digest(dob, salt))}"


def dob_matches(dob: date, stored: str) -> bool:
    if stored.startswith("hmac$"):
        _, key_id, salt, digest = stored.split("$")
        if key_id != _key_id():
            raise DobKeyMismatch(f"a date of birth was stored under key {key_id}, not this key ({_key_id()})")
        return hmac.compare_digest(_digest(dob, _unb64(salt)), _unb64(digest))
    keyed = hmac.new(settings.secret_key.encode(), dob.isoformat().encode(), hashlib.sha256).digest()
    if stored.startswith("scrypt$"):
        _, log2_n, salt, digest = stored.split("$")
        expected = _unb64(digest)
        hashed = hashlib.scrypt(keyed, salt=_unb64(salt), n=2 ** int(log2_n), r=_SCRYPT_R, p=_SCRYPT_P,
                                dklen=len(expected), maxmem=2**26)
        return hmac.compare_digest(hashed, expected)
    return hmac.compare_digest(keyed.hex(), stored)


def check_dob_key(engine) -> None:
    """Refuse to run on a key the stored dates of birth were not made with: every customer would fail
    verification and be locked out. The key is DOB_HASH_KEY, or the local var/dob-hash.key."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    try:
        with engine.connect() as connection:
            stored = connection.execute(text("SELECT dob_hmac FROM accounts WHERE dob_hmac LIKE 'hmac$%' LIMIT 1")).scalar()
    except DBAPIError:
        return  # no accounts table yet: nothing was stored under any key
    stored_key_id = stored.split("$")[1] if stored else _key_id()
    if stored_key_id != _key_id():
        raise DobKeyMismatch(
            f"the dates of birth in the database were stored under key {stored_key_id}, and this key is "
            f"{_key_id()}: set DOB_HASH_KEY (or restore {settings.dob_hash_key_file}) to the key they were made with")


# ---------------------------------------------------------------------------------------------------------------
# Masking. Patterns run with re.ASCII: \d is 0-9 (full-width digits are folded first) and \b falls between a
# Chinese character and a Latin letter, so "我的pin是4321" still has a word "pin".
_FLAGS = re.ASCII | re.IGNORECASE
_FULLWIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")

# What may stand between a label and its value: "is", "number", "#", "：", "是", "号码是" ...
_FILLER = (r"(?:[\s:#=,.'’\-]|\b(?:number|num|no|is|was|are|s|code|digits?|of|my|the|on|back|it|its)\b"
           r"|是|为|為|号码|號碼|号|號|码|碼|的|：|，|数字|數字){0,8}?")
_EN_DIGIT = r"(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)"
_SPOKEN_DIGITS = rf"\b{_EN_DIGIT}(?:[\s,\-]+{_EN_DIGIT}){{2,7}}\b|[零〇幺一二两三四五六七八九]{{3,8}}"


def _labelled(labels: str, value: str) -> re.Pattern:
    return re.compile(rf"(?:{labels}){_FILLER}(?P<v>{value})", _FLAGS)


_CARD_LABEL = r"\bcard\b(?:\s+(?:number|no))?|卡号|卡號|信用卡|银行卡|銀行卡"
_CVV_LABEL = (r"\b(?:cvv2?|cvc2?|cvn2?|csc|cid|security\s+code|(?:card\s+)?verification\s+(?:code|value|number)"
              r"|(?:three|four|3|4)[\s\-]digits?(?:\s+code|\s+number)?(?:\s+on\s+the\s+back)?"
              r"|(?:code|digits|numbers?)\s+on\s+the\s+back)\b"
              r"|安全[码碼]|校验[码碼]|校驗碼|验证[码碼]|驗證碼|背[面后後]的?(?:[三四34]位)?(?:数字|数|數字|數|码|碼)?")
_PIN_LABEL = r"\bpin\b|密码|密碼"
_SSN_LABEL = r"\b(?:ssn|social\s+security(?:\s+number|\s+no)?|social)\b|社会安全号码?|社會安全號碼?|社会保障号码?|社安号"
_PASSPORT_LABEL = r"\bpassport\b|护照|護照"
_CN_ID_LABEL = (r"身份证|身份證|证件号|證件號"
                r"|\b(?:national\s+|resident\s+)?(?:id|identity|identification)(?:\s+card)?(?:\s+number|\s+no)?\b")

_CN_ID_VALUE = r"\d{6}[ \-]?\d{8}[ \-]?\d{3}[\dX](?![\dX])|\d{15}(?!\d)"
_CODES = [  # what follows one of these labels is masked, checksum or not
    _labelled(_CVV_LABEL, rf"\d{{3,4}}(?!\d)|{_SPOKEN_DIGITS}"),
    _labelled(_PIN_LABEL, rf"\d{{4,8}}(?!\d)|{_SPOKEN_DIGITS}"),
]
_LABELLED_IDS = [
    _labelled(_SSN_LABEL, r"\d{3}[ .\-]?\d{2}[ .\-]?\d{4}(?!\d)"),
    _labelled(_PASSPORT_LABEL, r"[A-Z]{0,2}\d{6,9}(?![\dA-Z])"),
    _labelled(_CN_ID_LABEL, _CN_ID_VALUE),
]
_LABELLED_CARD = _labelled(_CARD_LABEL, r"\d(?:[ .\-]{0,3}\d){12,18}?(?!\d)")

# Digit groups joined by spaces, dashes or dots; a leading "+" makes it a phone number.
_DIGIT_RUN = re.compile(r"(?<![\d+])\d+(?:[ .\-]{1,3}\d+)*", _FLAGS)
_DIGIT_GROUP = re.compile(r"\d+", _FLAGS)
_CN_ID = re.compile(rf"(?<!\d)(?:{_CN_ID_VALUE})", _FLAGS)
_SSN_SHAPE = re.compile(r"(?<![\d\-])\d{3}([ .\-])\d{2}\1\d{4}(?![\d\-])", _FLAGS)


class _Span(NamedTuple):
    start: int
    end: int
    replacement: str


def _card(start: int, end: int, digits: str) -> _Span:
    return _Span(start, end, f"[card ending {digits[-4:]}]")


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _cards(text: str) -> Iterator[_Span]:
    """Every run of 13 to 19 digits (in groups of any layout) that passes the Luhn check, and any number after a
    card label."""
    for run in _DIGIT_RUN.finditer(text):
        groups = list(_DIGIT_GROUP.finditer(text, run.start(), run.end()))
        for i, first in enumerate(groups):
            digits = ""
            for last in groups[i:]:
                digits += last.group()
                if len(digits) > 19:
                    break
                if len(digits) >= 13 and luhn.is_valid(digits):
                    yield _card(first.start(), last.end(), digits)
    for m in _LABELLED_CARD.finditer(text):
        yield _card(m.start("v"), m.end("v"), _digits(m.group("v")))


def _old_cn_id(number: str) -> bool:
    """A 15-digit resident ID (before 1999): a region code, then the birth date as YYMMDD."""
    try:
        date(1900 + int(number[6:8]), int(number[8:10]), int(number[10:12]))
    except ValueError:
        return False
    return number[0] in "12345678"


def _ids(text: str) -> Iterator[_Span]:
    for pattern in _LABELLED_IDS:
        for m in pattern.finditer(text):
            yield _Span(m.start("v"), m.end("v"), ID_WITHHELD)
    for m in _CN_ID.finditer(text):
        number = re.sub(r"[ \-]", "", m.group()).upper()
        valid = ric.is_valid(number) if len(number) == 18 else _old_cn_id(number)
        if valid:
            yield _Span(m.start(), m.end(), ID_WITHHELD)
    for m in _SSN_SHAPE.finditer(text):
        if ssn.is_valid(_digits(m.group())):
            yield _Span(m.start(), m.end(), ID_WITHHELD)


def _codes(text: str) -> Iterator[_Span]:
    for pattern in _CODES:
        for m in pattern.finditer(text):
            yield _Span(m.start("v"), m.end("v"), CODE_WITHHELD)


def _dates_of_birth(text: str, today: date) -> Iterator[_Span]:
    for entity in find_entities(text, today):
        if entity["entity"] == "date" and date.fromisoformat(entity["value"]).year <= today.year - DOB_AGE_YEARS:
            yield _Span(entity["start"], entity["end"], DOB_WITHHELD)


def mask_text(text: str, today: date) -> str:
    """Mask card numbers (keep the last 4), security codes and PINs, SSNs, passport and CN ID numbers, and
    anything that reads as a date of birth."""
    folded = text.translate(_FULLWIDTH_DIGITS)  # same length, so spans found in it apply to text
    found = [*_ids(folded), *_cards(folded), *_codes(folded), *_dates_of_birth(folded, today)]
    kept: list[_Span] = []
    # The longest first; on a tie the earlier kind in `found` wins (sort is stable): an 18-digit CN ID that also
    # passes Luhn stays an ID.
    for span in sorted(found, key=lambda s: s.start - s.end):
        if all(span.end <= k.start or span.start >= k.end for k in kept):
            kept.append(span)
    for span in sorted(kept, key=lambda s: s.start, reverse=True):
        text = text[: span.start] + span.replacement + text[span.end :]
    return text
