"""Dates of birth, card numbers and ID numbers never reach a transcript unmasked."""
from datetime import date

from kindly.privacy import DOB_WITHHELD, dob_hmac, dob_matches, mask_text

TODAY = date(2026, 11, 29)


def test_dob_is_checked_against_a_keyed_hash():
    stored = dob_hmac(date(1985, 3, 5))
    assert "1985" not in stored and len(stored) == 64
    assert dob_matches(date(1985, 3, 5), stored)
    assert not dob_matches(date(1985, 5, 3), stored)


def test_card_numbers_keep_only_the_last_four():
    assert mask_text("my card is 4111 1111 1111 1234", TODAY) == "my card is [card ending 1234]"
    assert "4111" not in mask_text("4111-1111-1111-1234", TODAY)


def test_national_ids_are_masked():
    assert "110101" not in mask_text("身份证号11010119850305123X", TODAY)
    assert "[ID withheld]" in mask_text("ssn 123-45-6789", TODAY)


def test_old_dates_read_as_birth_dates_are_masked_in_both_languages():
    for said in ["born March 5, 1985", "我是1985年3月5日出生的", "19850305"]:
        masked = mask_text(said, TODAY)
        assert DOB_WITHHELD in masked and "1985" not in masked


def test_promise_dates_are_kept():
    assert mask_text("I can pay on December 10", TODAY) == "I can pay on December 10"
