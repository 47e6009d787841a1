"""Dates of birth, card numbers, security codes and ID numbers never reach a transcript unmasked."""
import base64
import hashlib
import hmac
import re
import traceback
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
import yaml
from sqlalchemy import insert, text
from sqlalchemy.exc import DBAPIError

from kindly.db import make_engine
from kindly.migrate import upgrade
from kindly.models import Account

from kindly.privacy import DOB_WITHHELD, DobKeyMismatch, check_dob_key, dob_hmac, dob_matches, mask_text
from kindly.settings import settings
from tests.conftest import dob_spellings, find_leaks

TODAY = date(2026, 11, 29)
CORPUS = yaml.safe_load((Path(__file__).parent / "privacy_corpus.yml").read_text(encoding="utf-8"))


def squash(text: str) -> str:
    return re.sub(r"[\s.\-]", "", text)


def test_the_corpus_covers_fifty_formats_in_both_languages():
    masked, kept = CORPUS["masked"], CORPUS["kept"]
    assert len(masked) >= 50 and len(kept) >= 10
    assert {case["lang"] for case in masked} == {case["lang"] for case in kept} == {"en", "zh"}
    assert {case["kind"] for case in masked} == {"card", "cvv", "pin", "ssn", "passport", "cn_id", "dob"}


@pytest.mark.parametrize("case", CORPUS["masked"], ids=lambda case: f"{case['kind']}-{case['text']}")
def test_secrets_are_masked(case):
    masked = mask_text(case["text"], TODAY)
    secrets = case["secret"] if isinstance(case["secret"], list) else [case["secret"]]
    for secret in secrets:
        assert secret not in masked and squash(secret) not in squash(masked), masked
    if "last4" in case:
        assert f"[card ending {case['last4']}]" in masked, masked
    assert mask_text(masked, TODAY) == masked, "masking twice changes nothing"


@pytest.mark.parametrize("case", CORPUS["kept"], ids=lambda case: case["text"])
def test_near_misses_are_kept(case):
    assert mask_text(case["text"], TODAY) == case["text"]


def test_card_numbers_keep_only_the_last_four():
    assert mask_text("my card is 4111 1111 1111 1111", TODAY) == "my card is [card ending 1111]"
    assert mask_text("4012-8888-8888-1881 and cvv 737", TODAY) == "[card ending 1881] and cvv [code withheld]"


def test_national_ids_are_masked():
    assert mask_text("身份证号11010519491231002X", TODAY) == "身份证号[ID withheld]"
    assert mask_text("ssn 123-45-6789", TODAY) == "ssn [ID withheld]"


def test_old_dates_read_as_birth_dates_are_masked_in_both_languages():
    for said in ["born March 5, 1985", "我是1985年3月5日出生的", "19850305"]:
        masked = mask_text(said, TODAY)
        assert DOB_WITHHELD in masked and "1985" not in masked


def test_promise_dates_are_kept():
    assert mask_text("I can pay on December 10", TODAY) == "I can pay on December 10"


def legacy_hmac(dob: date) -> str:
    """The stored value before the salted form: a plain HMAC-SHA256 of the ISO date keyed with SECRET_KEY."""
    return hmac.new(settings.secret_key.encode(), dob.isoformat().encode(), hashlib.sha256).hexdigest()


def legacy_scrypt(dob: date) -> str:
    """The stored value of the release before this one: salted scrypt (2**12 here) over the legacy HMAC."""
    salt = b"fixed-salt12"
    raw = hashlib.scrypt(bytes.fromhex(legacy_hmac(dob)), salt=salt, n=2**12, r=8, p=1, dklen=24)
    encode = lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")  # noqa: E731
    return f"scrypt$12${encode(salt)}${encode(raw)}"


def test_dob_is_stored_as_a_salted_hmac_under_a_key_kept_out_of_the_database():
    stored = dob_hmac(date(1985, 3, 5))
    assert stored.startswith("hmac$") and len(stored) <= 64  # accounts.dob_hmac is String(64)
    assert "1985" not in stored and legacy_hmac(date(1985, 3, 5)) not in stored
    assert dob_hmac(date(1985, 3, 5)) != stored, "each account gets its own salt"
    assert dob_matches(date(1985, 3, 5), stored)
    assert not dob_matches(date(1985, 5, 3), stored)
    # Knowing the (default) SECRET_KEY and the salt is not enough to test a guess: the key is elsewhere.
    _, _key_id, salt, digest = stored.split("$")
    salt_bytes = base64.urlsafe_b64decode(salt + "=" * (-len(salt) % 4))
    with_secret_key = hmac.new(settings.secret_key.encode(), salt_bytes + b"1985-03-05", hashlib.sha256).digest()
    assert base64.urlsafe_b64encode(with_secret_key).decode().rstrip("=") != digest


@pytest.fixture
def key_settings(monkeypatch):
    """Replace the settings the date-of-birth hash reads (and forget the cached key, before and after)."""
    from kindly import privacy

    def use(**changes):
        monkeypatch.setattr(privacy, "settings", replace(settings, **changes))
        privacy._dob_key.cache_clear()
        privacy._key_id.cache_clear()

    yield use
    privacy._dob_key.cache_clear()
    privacy._key_id.cache_clear()


def test_the_local_key_is_made_once_and_shared_by_every_process(tmp_path, key_settings):
    key_file = tmp_path / "var" / "dob-hash.key"
    key_settings(dob_hash_key="", dob_hash_key_file=key_file)
    stored = dob_hmac(date(1990, 7, 1))
    key = key_file.read_text()
    assert len(key) == 64 and key_file.stat().st_mode & 0o777 == 0o600
    key_settings(dob_hash_key="", dob_hash_key_file=key_file)  # another process, later: reads the same key
    assert dob_matches(date(1990, 7, 1), stored) and key_file.read_text() == key
    key_settings(dob_hash_key="", dob_hash_key_file=key_file, environment="production")
    with pytest.raises(RuntimeError, match="DOB_HASH_KEY"):
        dob_hmac(date(1990, 7, 1))


def test_a_lost_or_wrong_key_is_refused_not_taken_for_a_wrong_date(tmp_path, key_settings):
    """Under another key every customer would fail verification and be locked out: it raises instead, and the
    gateway does not start."""
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    upgrade(url)
    engine = make_engine(url)
    key_settings(dob_hash_key="the-key-the-bank-keeps")
    stored = dob_hmac(date(1985, 3, 5))
    with engine.begin() as connection:
        connection.execute(insert(Account), dict(
            external_id="KEY-1", name="Alex Morgan", phone="+14155550123", language="en", timezone="America/New_York",
            country="US", currency="USD", balance=100, minimum_due=10, days_past_due=5, due_date=date(2026, 11, 1),
            card_last4="4242", dob_hmac=stored, segment="early"))
    check_dob_key(engine)
    key_settings(dob_hash_key="a-new-key-made-by-mistake")
    with pytest.raises(DobKeyMismatch):
        dob_matches(date(1985, 3, 5), stored)
    with pytest.raises(DobKeyMismatch, match="set DOB_HASH_KEY"):
        check_dob_key(engine)
    engine.dispose()


def test_production_refuses_to_start_without_a_dob_hash_key():
    strong = dict(admin_api_key="a" * 32, twilio_auth_token="t" * 32, secret_key="s" * 32, console_password="p" * 16)
    with pytest.raises(RuntimeError, match="DOB_HASH_KEY"):
        replace(settings, environment="production", dob_hash_key="", **strong).check_production_secrets()
    replace(settings, environment="production", dob_hash_key="k" * 64, **strong).check_production_secrets()


def test_rows_from_before_the_key_still_verify():
    for old_form in (legacy_hmac, legacy_scrypt):
        old = old_form(date(1988, 2, 3))
        assert dob_matches(date(1988, 2, 3), old) and not dob_matches(date(1988, 3, 2), old)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_database(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'errors.db'}"
    return request.getfixturevalue("postgres_url")


def test_a_database_error_names_the_statement_but_never_the_values(any_database):
    upgrade(any_database)
    engine = make_engine(any_database)
    # The NOT NULL columns left out make the insert fail, as a full disk or a locked file would.
    row = dict(external_id="LEAK-1", name="Alex Morgan", phone="+14155550123", dob_hmac=dob_hmac(date(1985, 3, 5)))
    try:
        with pytest.raises(DBAPIError) as raised, engine.begin() as connection:
            connection.execute(insert(Account), row)
    finally:
        engine.dispose()
    logged = "".join(traceback.format_exception(raised.value))  # what a server's error log would show
    assert "INSERT INTO accounts" in logged
    for value in row.values():
        assert value not in logged, logged


def test_the_leak_scan_finds_planted_secrets_in_logs_and_database_rows(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "gateway.log").write_text(
        "started\n"
        "ERROR payment for card 4012-8888-8888-1881 declined\n"
        "WARNING customer Alex Morgan (+1 415 555 0123) asked for a callback\n"
        "INFO masked: [card ending 1881], cvv [code withheld], [date of birth withheld]\n",
        encoding="utf-8",
    )
    url = f"sqlite:///{tmp_path / 'planted.db'}"
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT, dob_hash TEXT)"))
        connection.execute(text("INSERT INTO notes (body, dob_hash) VALUES ('cvv 737, born 1985年3月5日', 'H4SH')"))
    engine.dispose()
    secrets = {"4012888888881881", "cvv 737", "H4SH"} | dob_spellings(date(1985, 3, 5))

    hits = find_leaks(secrets, logs, [url], names=["Alex Morgan"], allowed={("notes", "dob_hash")})
    assert sorted(hits) == sorted([
        "gateway.log:2: '4012888888881881'",
        "gateway.log:3: a name with a phone number",
        "planted.db notes.body: 'cvv 737'",
        "planted.db notes.body: '1985年3月5日'",
    ])
    assert len(find_leaks(secrets, logs, [url], names=["Alex Morgan"])) == 5, "the hash outside the allowed column"


def test_the_leak_scan_does_not_read_a_unix_time_as_a_date_of_birth(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "engine.log").write_text('{"event": "user", "timestamp": 1796019850.305123}\nborn 1985.03.05\n', encoding="utf-8")
    hits = find_leaks(dob_spellings(date(1985, 3, 5)), logs, [])
    assert len(hits) == 1 and hits[0].startswith("engine.log:2: "), hits
