"""The JSON shapes of the REST API (PRODUCT.md section 5)."""
from datetime import date, datetime
from decimal import Decimal
from typing import Literal, Optional
from zoneinfo import ZoneInfo, available_timezones

import phonenumbers
from babel.numbers import list_currencies
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Language = Literal["en", "zh"]
Country = Literal["US", "CN"]
Segment = Literal["early", "late", "flagged"]
Channel = Literal["voice", "sms"]


def e164(value: str) -> str:
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException as error:
        raise ValueError(f"not an E.164 phone number: {error}") from error
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


class AccountIn(BaseModel):
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
    def phone_is_e164(cls, value: str) -> str:
        return e164(value)

    @field_validator("timezone")
    @classmethod
    def timezone_is_iana(cls, value: str) -> str:
        if value not in available_timezones():
            raise ValueError("not an IANA time zone")
        ZoneInfo(value)
        return value

    @field_validator("currency")
    @classmethod
    def currency_is_known(cls, value: str) -> str:
        if value not in list_currencies():
            raise ValueError("unknown currency code")
        return value

    @field_validator("date_of_birth")
    @classmethod
    def born_in_the_past(cls, value: date) -> date:
        if not date(1900, 1, 1) <= value < date.today():
            raise ValueError("date of birth must be in the past")
        return value

    @model_validator(mode="after")
    def minimum_within_balance(self) -> "AccountIn":
        if self.minimum_due > self.balance:
            raise ValueError("minimum_due cannot exceed balance")
        return self


class OptOutOut(BaseModel):
    channel: str
    at: datetime


class AccountFlags(BaseModel):
    """Each flag of PRODUCT.md section 3: true while it is in force."""

    dispute: bool
    fraud: bool
    deceased: bool
    vulnerable: bool
    cease: bool
    legal_hold: bool
    wrong_number: bool


Flag = Literal["dispute", "fraud", "deceased", "vulnerable", "cease", "legal_hold", "wrong_number"]


class FlagChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    by: str = Field(min_length=1, max_length=64, description="who sets or clears the flag (an agent's name)")
    reason: str = Field(min_length=1, max_length=1000)


class FlagRecordOut(BaseModel):
    flag: str
    set_at: datetime
    set_by: str
    set_reason: str
    cleared_at: Optional[datetime]
    cleared_by: Optional[str]
    cleared_reason: Optional[str]


class AccountOut(BaseModel):
    id: int
    external_id: str
    name: str
    phone: str
    language: str
    timezone: str
    country: str
    currency: str
    balance: Decimal
    minimum_due: Decimal
    days_past_due: int
    due_date: date
    card_last4: str
    segment: str
    opt_outs: list[OptOutOut]
    flags: AccountFlags
    flag_history: list[FlagRecordOut]


class TurnOut(BaseModel):
    role: str
    text: str
    at: datetime


class ConversationOut(BaseModel):
    id: str
    account_id: int
    channel: str
    direction: str
    language: str
    verified: bool
    reason_code: Optional[str]
    reason_text: Optional[str]
    disposition: Optional[str]
    started_at: datetime
    ended_at: Optional[datetime]
    transcript: list[TurnOut]


class InstallmentOut(BaseModel):
    seq: int
    due_date: date
    amount: Decimal


class PromiseOut(BaseModel):
    id: int
    account_id: int
    conversation_id: str
    amount: Decimal
    currency: str
    due_date: date
    plan_type: str
    installments: int
    total: Decimal
    status: str
    created_at: datetime
    schedule: list[InstallmentOut]


class HandoffOut(BaseModel):
    id: int
    account_id: int
    conversation_id: str
    reason: str
    channel: str
    status: str
    summary: str
    created_at: datetime


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account_id: int
    channel: Channel


class ContactOut(BaseModel):
    id: int
    account_id: int
    channel: str
    direction: str
    external_ref: Optional[str]
    conversation_id: Optional[str]
    outcome: str
    at: datetime


class AgentMessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    text: str = Field(min_length=1, max_length=1600)


Disposition = Literal[
    "promise_to_pay", "handoff", "wrong_number", "third_party", "callback_requested", "verification_failed",
    "opted_out", "already_paid", "no_commitment", "voicemail", "no_answer",
]


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    disposition: Disposition
    note: str = Field("", max_length=4000)
    resume_bot: bool = True


class HandoffMessageOut(BaseModel):
    role: str
    text: str
    at: datetime


class HandoffDetailOut(HandoffOut):
    disposition: Optional[str]
    note: Optional[str]
    messages: list[HandoffMessageOut]
    transcript: list[TurnOut]


class NumberIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    agent_line: Optional[str] = None
    voice_en: str = Field("Polly.Joanna", max_length=40)
    voice_zh: str = Field("Polly.Zhiyu", max_length=40)
    campaign: Optional[str] = Field(None, max_length=64)

    @field_validator("agent_line")
    @classmethod
    def agent_line_is_e164(cls, value: Optional[str]) -> Optional[str]:
        return e164(value) if value else None


class NumberOut(NumberIn):
    number: str
