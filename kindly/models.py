"""The data model. Money is Numeric/Decimal; times are UTC."""
import uuid
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Optional

from sqlalchemy import JSON, Boolean, Date, DateTime, Float, ForeignKey, Index, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

Money = Numeric(14, 2)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def new_id() -> str:
    return uuid.uuid4().hex


class Base(DeclarativeBase):
    pass


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str] = mapped_column(String(20), index=True)
    language: Mapped[str] = mapped_column(String(2))
    timezone: Mapped[str] = mapped_column(String(64))
    country: Mapped[str] = mapped_column(String(2))
    currency: Mapped[str] = mapped_column(String(3))
    balance: Mapped[Decimal] = mapped_column(Money)
    minimum_due: Mapped[Decimal] = mapped_column(Money)
    days_past_due: Mapped[int] = mapped_column(Integer)
    due_date: Mapped[date] = mapped_column(Date)
    card_last4: Mapped[str] = mapped_column(String(4))
    dob_hmac: Mapped[str] = mapped_column(String(64))
    segment: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    opt_outs: Mapped[list["OptOut"]] = relationship(back_populates="account", order_by="OptOut.at")
    flag_history: Mapped[list["AccountFlag"]] = relationship(order_by="AccountFlag.id", lazy="selectin", viewonly=True)

    @property
    def flags(self) -> set[str]:
        """The flags in force (PRODUCT.md section 3); every one of them stops automated contact."""
        return {row.flag for row in self.flag_history if row.cleared_at is None}


FLAGS = ("dispute", "fraud", "deceased", "vulnerable", "cease", "legal_hold", "wrong_number")


class AccountFlag(Base):
    """One flag on an account, set and (maybe) cleared, each with who, when and why."""

    __tablename__ = "account_flags"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    flag: Mapped[str] = mapped_column(String(16))
    set_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    set_by: Mapped[str] = mapped_column(String(64))
    set_reason: Mapped[str] = mapped_column(Text, default="")
    cleared_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    cleared_by: Mapped[Optional[str]] = mapped_column(String(64))
    cleared_reason: Mapped[Optional[str]] = mapped_column(Text)


class VerificationAttempt(Base):
    """A date-of-birth check, kept on the account so the lockout holds across conversations and channels."""

    __tablename__ = "verification_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    conversation_id: Mapped[Optional[str]] = mapped_column(ForeignKey("conversations.id"))
    channel: Mapped[str] = mapped_column(String(8))
    succeeded: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class OptOut(Base):
    __tablename__ = "opt_outs"
    __table_args__ = (UniqueConstraint("account_id", "channel"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    channel: Mapped[str] = mapped_column(String(8))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    conversation_id: Mapped[Optional[str]] = mapped_column(String(32))

    account: Mapped[Account] = relationship(back_populates="opt_outs")


class Conversation(Base):
    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    channel: Mapped[str] = mapped_column(String(8))
    direction: Mapped[str] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(2))
    external_ref: Mapped[Optional[str]] = mapped_column(String(64), index=True)
    stage: Mapped[str] = mapped_column(String(16), default="opening")
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    reason_code: Mapped[Optional[str]] = mapped_column(String(24))
    reason_text: Mapped[Optional[str]] = mapped_column(Text)
    disposition: Mapped[Optional[str]] = mapped_column(String(24))
    callback_note: Mapped[Optional[str]] = mapped_column(Text)
    callback_date: Mapped[Optional[date]] = mapped_column(Date)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_activity_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    ended_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))

    turns: Mapped[list["TranscriptTurn"]] = relationship(order_by="TranscriptTurn.id")


class TranscriptTurn(Base):
    __tablename__ = "transcript_turns"

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    role: Mapped[str] = mapped_column(String(8))
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Promise(Base):
    __tablename__ = "promises"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    # One promise per conversation: a retried confirmation can never store a second one.
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), unique=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    due_date: Mapped[date] = mapped_column(Date)
    plan_type: Mapped[str] = mapped_column(String(16))
    installments: Mapped[int] = mapped_column(Integer, default=1)
    total: Mapped[Decimal] = mapped_column(Money)
    # open | kept | partially_kept | broken | cancelled (kindly/follow_through.py decides from the payments)
    status: Mapped[str] = mapped_column(String(16), default="open")
    # A changed plan cancels the old promise and points it at the new one, so promises never stack.
    superseded_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("promises.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    schedule: Mapped[list["PromiseInstallment"]] = relationship(order_by="PromiseInstallment.seq")


class PromiseInstallment(Base):
    __tablename__ = "promise_installments"

    id: Mapped[int] = mapped_column(primary_key=True)
    promise_id: Mapped[int] = mapped_column(ForeignKey("promises.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    due_date: Mapped[date] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(Money)
    # open | kept | partially_kept | broken, and what the payments feed has put towards it.
    status: Mapped[str] = mapped_column(String(16), default="open")
    paid: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))


class Handoff(Base):
    __tablename__ = "handoffs"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    reason: Mapped[str] = mapped_column(String(24))
    channel: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(12), default="waiting", index=True)
    summary: Mapped[str] = mapped_column(Text)
    disposition: Mapped[Optional[str]] = mapped_column(String(24))
    note: Mapped[Optional[str]] = mapped_column(Text)
    # False keeps the bot out of this customer's SMS after the agent closes the case.
    resume_bot: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    resolved_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))


class FollowUp(Base):
    __tablename__ = "follow_ups"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    conversation_id: Mapped[Optional[str]] = mapped_column(ForeignKey("conversations.id"))
    kind: Mapped[str] = mapped_column(String(24))  # verify_payment | callback | reminder | recontact | agent_reply | confirmation | agent_notice
    due_on: Mapped[date] = mapped_column(Date)
    # The moment it is due; without one, the start of due_on in the account's time zone (kindly/follow_through.py).
    due_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    note: Mapped[str] = mapped_column(Text, default="")
    # open | running | done | failed | cancelled (kindly/tasks.py)
    status: Mapped[str] = mapped_column(String(12), default="open", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[Optional[str]] = mapped_column(Text)
    # Unique, so the sweep creates each reminder and re-contact once however often it runs ("reminder:12:before").
    key: Mapped[Optional[str]] = mapped_column(String(64), unique=True)
    handoff_id: Mapped[Optional[int]] = mapped_column(ForeignKey("handoffs.id"))  # a colleague's callback
    promise_id: Mapped[Optional[int]] = mapped_column(ForeignKey("promises.id"))
    installment_id: Mapped[Optional[int]] = mapped_column(ForeignKey("promise_installments.id"))
    # When the sweep last put it on the queue: it is not queued again while this is recent.
    enqueued_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    closed_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))


class Payment(Base):
    """A payment from the bank's feed (POST /api/payments, `kindly import --payments`). The reference is the
    bank's, so the same payment sent twice is recorded once."""

    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    paid_on: Mapped[date] = mapped_column(Date)
    reference: Mapped[str] = mapped_column(String(64), unique=True)
    source: Mapped[str] = mapped_column(String(8))  # api | file
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ContactAttempt(Base):
    __tablename__ = "contact_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    channel: Mapped[str] = mapped_column(String(8))
    direction: Mapped[str] = mapped_column(String(16))
    external_ref: Mapped[Optional[str]] = mapped_column(String(64), index=True)
    conversation_id: Mapped[Optional[str]] = mapped_column(ForeignKey("conversations.id"))
    # collection | reminder | callback | recontact: an open promise refuses a collection contact, not its reminder.
    purpose: Mapped[str] = mapped_column(String(16), default="collection")
    outcome: Mapped[str] = mapped_column(String(16), default="initiated")
    connected: Mapped[bool] = mapped_column(Boolean, default=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class AuditLog(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)


class HandoffMessage(Base):
    """What the customer and the agent write while an SMS conversation is with a person."""

    __tablename__ = "handoff_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    handoff_id: Mapped[int] = mapped_column(ForeignKey("handoffs.id"), index=True)
    role: Mapped[str] = mapped_column(String(8))  # user | agent
    channel: Mapped[Optional[str]] = mapped_column(String(8))  # where it was sent or received
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class WebhookReceipt(Base):
    """The answer given to a Twilio webhook, so a retry of the same request gets it again instead of a new turn."""

    __tablename__ = "webhook_receipts"

    key: Mapped[str] = mapped_column(String(96), primary_key=True)
    # pending while the first copy of the request runs its turn; done once the answer is stored.
    state: Mapped[str] = mapped_column(String(8), default="done")
    response: Mapped[Optional[str]] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PhoneNumber(Base):
    """A Twilio number of ours, as a channel admin configures it."""

    __tablename__ = "phone_numbers"

    number: Mapped[str] = mapped_column(String(20), primary_key=True)
    agent_line: Mapped[Optional[str]] = mapped_column(String(20))
    voice_en: Mapped[str] = mapped_column(String(40), default="Polly.Joanna")
    voice_zh: Mapped[str] = mapped_column(String(40), default="Polly.Zhiyu")
    campaign: Mapped[Optional[str]] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class Import(Base):
    """One account list imported (kindly/importer.py): who sent which file, and the report."""

    __tablename__ = "imports"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    filename: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(12), default="queued")  # queued | running | done | failed
    report: Mapped[Optional[dict]] = mapped_column(JSON)
    error: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))


class Campaign(Base):
    """A named run (kindly/campaigns.py): which accounts (a segment and a filter), a channel plan and a schedule."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    segment: Mapped[Optional[str]] = mapped_column(String(16))
    filter: Mapped[dict] = mapped_column(JSON, default=dict)
    # [{"channel": "sms"|"voice", "after_hours": n, "when": "always"|"not_reached", "retries": n}, ...]
    plan: Mapped[list] = mapped_column(JSON)
    starts_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(12), default="draft")  # draft | running | paused | done
    calls_per_second: Mapped[Decimal] = mapped_column(Numeric(8, 3), default=Decimal("1"))
    texts_per_second: Mapped[Decimal] = mapped_column(Numeric(8, 3), default=Decimal("1"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))


class CampaignContact(Base):
    """One step of a campaign's plan for one account: the unique (campaign, account, step) row a worker must
    claim before it may contact the account, so two workers never contact the same account in the same slot."""

    __tablename__ = "campaign_contacts"
    __table_args__ = (
        UniqueConstraint("campaign_id", "account_id", "step"),
        # What a worker asks for every contact: the due rows of one campaign in one status, oldest first.
        Index("ix_campaign_contacts_due", "campaign_id", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    step: Mapped[int] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(8))
    # pending | claimed | sent | refused | skipped | failed | done
    status: Mapped[str] = mapped_column(String(12), default="pending", index=True)
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    tries: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[Optional[str]] = mapped_column(String(64))
    attempt_id: Mapped[Optional[int]] = mapped_column(ForeignKey("contact_attempts.id"))
    refusal_rule: Mapped[Optional[str]] = mapped_column(String(32))
    detail: Mapped[Optional[str]] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class RateBucket(Base):
    """The pace of Twilio requests of one kind across every worker, in the embedded mode (Redis holds it
    otherwise): a token bucket of one token kept as the time its next token is free (kindly/campaigns.py)."""

    __tablename__ = "rate_buckets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_slot: Mapped[float] = mapped_column(Float)  # seconds since the epoch


class ConsoleSession(Base):
    """An agent's console login (gateway/console.py). Only a keyed hash of the random token is kept: the token
    itself is in the agent's cookie alone."""

    __tablename__ = "console_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ConsoleLoginFailure(Base):
    """A wrong console password, counted per client address and overall to throttle guessing."""

    __tablename__ = "console_login_failures"
    __table_args__ = (Index("ix_console_login_failures_ip_at", "ip", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ip: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
