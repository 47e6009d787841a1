"""The JSON shapes of the REST API (PRODUCT.md section 5)."""
from datetime import date, datetime
from decimal import Decimal
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kindly.account_fields import AccountFields, Country, Language, Segment, e164  # noqa: F401 (re-exported)
from kindly.payments import PaymentFields

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
    status: str  # open | kept | partially_kept | broken
    paid: Decimal  # what the payments feed has put towards this part


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
    paid: Decimal
    status: str  # open | kept | partially_kept | broken | cancelled
    # The promise that replaced this one when the customer changed their plan (status "cancelled").
    superseded_by_id: Optional[int] = None
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


class HeldReplyOut(BaseModel):
    """An agent's SMS held for the calling window, and when it goes."""

    follow_up_id: int
    text: str
    sends_at: datetime


class HandoffDetailOut(HandoffOut):
    disposition: Optional[str]
    note: Optional[str]
    messages: list[HandoffMessageOut]
    transcript: list[TurnOut]
    held_replies: list[HeldReplyOut]


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


class PaymentIn(PaymentFields):
    """A payment from the bank's feed: {account_id or external_id, amount, currency?, paid_on, reference}."""


class PaymentResultOut(BaseModel):
    reference: str
    status: Literal["recorded", "duplicate", "rejected"]
    reason: Optional[str]
    field: Optional[str]
    payment_id: Optional[int]
    account_id: Optional[int]


class PaymentOut(BaseModel):
    id: int
    account_id: int
    amount: Decimal
    currency: str
    paid_on: date
    reference: str
    source: str
    created_at: datetime


FollowUpStatus = Literal["open", "running", "done", "failed", "cancelled"]
FollowUpKind = Literal["verify_payment", "callback", "reminder", "recontact", "agent_reply", "confirmation", "agent_notice"]


class FollowUpOut(BaseModel):
    id: int
    account_id: int
    conversation_id: Optional[str]
    kind: str
    due_on: date
    due_at: Optional[datetime]
    status: str
    attempts: int
    last_error: Optional[str]
    note: str
    handoff_id: Optional[int]
    promise_id: Optional[int]
    installment_id: Optional[int]
    created_at: datetime
    closed_at: Optional[datetime]


class CampaignIn(BaseModel):
    """POST /api/campaigns: who (a segment and/or a filter), the channel plan and the schedule (kindly/campaigns.py)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=100)
    segment: Optional[Segment] = None
    filter: dict = Field(default_factory=dict, description="country, language, min_days_past_due, max_days_past_due, min_balance, external_ids")
    plan: str = Field("sms,voice+24hx2", max_length=200, description="steps channel[+Nh][xR]: an SMS, then a call 24 h later retried twice")
    starts_at: Optional[datetime] = None
    calls_per_second: Decimal = Field(Decimal("1"), ge=Decimal("0.01"), le=100)
    texts_per_second: Decimal = Field(Decimal("1"), ge=Decimal("0.01"), le=100)
