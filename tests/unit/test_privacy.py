"""Dates of birth, card numbers, security codes and ID numbers never reach a transcript unmasked."""
import hashlib
import hmac
import re
import traceback
from datetime import date
from pathlib import Path

import pytest
import yaml
from sqlalchemy import insert, text
from sqlalchemy.exc import DBAPIError

from kindly.db import make_engine
from kindly.migrate import upgrade
from kindly.models import Account

from kindly.privacy import DOB_WITHHELD, dob_hmac, dob_matches, mask_text
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
    """The stored value before scrypt: a plain HMAC-SHA256 of the ISO date."""
    return hmac.new(settings.secret_key.encode(), dob.isoformat().encode(), hashlib.sha256).hexdigest()


def test_dob_is_stored_as_a_salted_scrypt_of_a_keyed_hash():
    stored = dob_hmac(date(1985, 3, 5))
    assert stored.startswith("scrypt$14$") and len(stored) <= 64  # accounts.dob_hmac is String(64)
    assert "1985" not in stored and legacy_hmac(date(1985, 3, 5)) not in stored
    assert dob_hmac(date(1985, 3, 5)) != stored, "each account gets its own salt"
    assert dob_matches(date(1985, 3, 5), stored)
    assert not dob_matches(date(1985, 5, 3), stored)


def test_rows_from_before_scrypt_still_verify():
    old = legacy_hmac(date(1988, 2, 3))
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
