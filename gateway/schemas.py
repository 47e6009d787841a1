"""The JSON shapes of the REST API (PRODUCT.md section 5)."""
from datetime import date, datetime
from decimal import Decimal
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kindly.account_fields import AccountFields, Country, Language, Segment, e164  # noqa: F401 (re-exported)

Channel = Literal["voice", "sms"]


class AccountIn(AccountFields):
    """POST /api/accounts: the account's rules live in kindly/account_fields.py, shared with the importer."""


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
