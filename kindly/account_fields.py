"""The rules an account's fields obey, in one place: the REST API (gateway/schemas.py) and the importer
(kindly/importer.py) both validate with AccountFields."""
from datetime import date
from decimal import Decimal
from typing import Literal, Optional
from zoneinfo import available_timezones

import phonenumbers
from babel.numbers import list_currencies
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

Language = Literal["en", "zh"]
Country = Literal["US", "CN"]
Segment = Literal["early", "late", "flagged"]

# Both calls read the disk on every call (available_timezones takes ~5 ms): read them once.
TIMEZONES = frozenset(available_timezones())
CURRENCIES = frozenset(list_currencies())


def e164(value: str, region: Optional[str] = None) -> str:
    """The number in E.164. Without a region it must be written in international form (+...); with one, a
    national number is read as that country's."""
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as error:
        raise ValueError(f"not an E.164 phone number: {error}") from error
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


class AccountFields(BaseModel):
    """An account as the bank gives it. Validated with context={"phone_region": "US"|"CN"}, a phone in a
    country's national format is accepted and normalised (the importer does this by each row's country);
    without it (the API) the phone must already be E.164."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    external_id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    phone: str
    language: Language
    timezone: str
    country: Country
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    balance: Decimal = Field(gt=0, max_digits=14, decimal_places=2)
    minimum_due: Decimal = Field(gt=0, max_digits=14, decimal_places=2)
    days_past_due: int = Field(ge=1, le=3650)
    due_date: date
    card_last4: str = Field(pattern=r"^\d{4}$")
    date_of_birth: date
    segment: Optional[Segment] = None

    @field_validator("phone")
    @classmethod
    def phone_is_e164(cls, value: str, info: ValidationInfo) -> str:
        return e164(value, (info.context or {}).get("phone_region"))

    @field_validator("timezone")
    @classmethod
    def timezone_is_iana(cls, value: str) -> str:
        if value not in TIMEZONES:
            raise ValueError("not an IANA time zone")
        return value

    @field_validator("currency")
    @classmethod
    def currency_is_known(cls, value: str) -> str:
        if value not in CURRENCIES:
            raise ValueError("unknown currency code")
        return value

    @field_validator("date_of_birth")
    @classmethod
    def born_in_the_past(cls, value: date) -> date:
        if not date(1900, 1, 1) <= value < date.today():
            raise ValueError("date of birth must be in the past")
        return value

    @model_validator(mode="after")
    def minimum_within_balance(self) -> "AccountFields":
        if self.minimum_due > self.balance:
            raise ValueError("minimum_due cannot exceed balance")
        return self
