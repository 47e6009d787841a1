"""The payments feed: `POST /api/payments` and `kindly import --payments FILE` (import_payments_file) record
the bank's payments, each once by its reference, and match them to the account's promise
(kindly/follow_through.py says what they make of it)."""
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Optional, Union
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kindly import follow_through, records
from kindly.db import session_scope
from kindly.importer import ImportRefused, parse_date, parse_money, read_table, text
from kindly.models import Account, Payment, Promise, as_utc
from kindly.policy import load_policy

MAX_ROW_ID = 2**31 - 1
FILE_COLUMNS = ("account_id", "external_id", "amount", "currency", "paid_on", "reference")
# Rows written per transaction by the file import.
FILE_CHUNK_ROWS = 500


class PaymentFields(BaseModel):
    """One payment as the bank reports it. The account is named by our id or the bank's external_id; the
    currency, if given, must be the account's."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    account_id: Optional[int] = Field(None, ge=1, le=MAX_ROW_ID)
    external_id: Optional[str] = Field(None, min_length=1, max_length=64)
    amount: Decimal = Field(gt=0, max_digits=14, decimal_places=2)
    currency: Optional[str] = Field(None, pattern=r"^[A-Z]{3}$")
    paid_on: date
    reference: str = Field(min_length=1, max_length=64)

    @model_validator(mode="after")
    def names_an_account(self) -> "PaymentFields":
        if self.account_id is None and self.external_id is None:
            raise ValueError("give account_id or external_id")
        return self


@dataclass
class PaymentResult:
    reference: str
    status: str  # recorded | duplicate | rejected
    reason: Optional[str] = None
    field: Optional[str] = None  # the field at fault, for a rejection
    payment_id: Optional[int] = None
    account_id: Optional[int] = None


def local_today(account: Account, now: Optional[datetime] = None) -> date:
    return (now or datetime.now(timezone.utc)).astimezone(ZoneInfo(account.timezone)).date()


def _find_account(session: Session, fields: PaymentFields) -> Union[Account, tuple[str, str]]:
    """The account, or (the field at fault, why)."""
    by_id = session.get(Account, fields.account_id) if fields.account_id is not None else None
    by_external = (
        session.scalar(select(Account).where(Account.external_id == fields.external_id)) if fields.external_id is not None else None
    )
    if fields.account_id is not None and by_id is None:
        return "account_id", f"account {fields.account_id} not found"
    if fields.external_id is not None and by_external is None:
        return "external_id", f"account {fields.external_id!r} not found"
    if by_id is not None and by_external is not None and by_id.id != by_external.id:
        return "external_id", "account_id and external_id name different accounts"
    return by_id or by_external


def record_payment(session: Session, fields: PaymentFields, source: str, now: Optional[datetime] = None) -> PaymentResult:
    """Record one payment (idempotent by reference) and settle the account's promise with it."""
    result = PaymentResult(reference=fields.reference, status="rejected")
    account = _find_account(session, fields)
    if isinstance(account, tuple):
        result.field, result.reason = account
        return result
    result.account_id = account.id
    if fields.currency and fields.currency != account.currency:
        result.field, result.reason = "currency", f"currency {fields.currency} is not the account's ({account.currency})"
        return result
    existing = session.scalar(select(Payment).where(Payment.reference == fields.reference))
    if existing is None:
        payment = Payment(
            account_id=account.id, amount=fields.amount, currency=account.currency, paid_on=fields.paid_on,
            reference=fields.reference, source=source,
        )
        try:
            with session.begin_nested():
                session.add(payment)
        except IntegrityError:  # the same reference, recorded by a concurrent request
            existing = session.scalar(select(Payment).where(Payment.reference == fields.reference))
    if existing is not None:
        same = (existing.account_id, existing.amount, existing.paid_on) == (account.id, fields.amount, fields.paid_on)
        result.status, result.payment_id = ("duplicate", existing.id) if same else ("rejected", None)
        if not same:
            result.field, result.reason = "reference", f"reference {fields.reference!r} is already recorded for another payment"
        return result
    records.audit(session, source, "payment_recorded", "payment", payment.id, account_id=account.id, amount=str(fields.amount))
    settle_account(session, account, now)
    result.status, result.payment_id = "recorded", payment.id
    return result


def latest_promise(session: Session, account_id: int) -> Optional[Promise]:
    """The account's promise in force or last made (a newer promise replaces an older, whatever became of it)."""
    return session.scalar(
        select(Promise).where(Promise.account_id == account_id, Promise.status != "cancelled").order_by(Promise.id.desc()).limit(1)
    )


def promised_on(promise: Promise, account: Account) -> date:
    """The day the promise was made, in the customer's time zone: payments from that day on count towards it."""
    return as_utc(promise.created_at).astimezone(ZoneInfo(account.timezone)).date()


def settle_account(session: Session, account: Account, now: Optional[datetime] = None) -> Optional[Promise]:
    promise = latest_promise(session, account.id)
    if promise is not None:
        settle_promise(session, promise, now)
    return promise


def settle_promise(session: Session, promise: Promise, now: Optional[datetime] = None) -> str:
    """Write each part's paid amount and status, and the promise's, from the payments made since it."""
    account = session.get(Account, promise.account_id)
    paid_total = session.scalar(
        select(func.coalesce(func.sum(Payment.amount), 0))
        .where(Payment.account_id == account.id, Payment.paid_on >= promised_on(promise, account))
    )
    states, status = follow_through.settle(
        [(part.due_date, part.amount) for part in promise.schedule], Decimal(paid_total), local_today(account, now),
        load_policy().grace_days,
    )
    for part, state in zip(promise.schedule, states):
        part.paid, part.status = state.paid, state.status
    if status != promise.status:
        records.audit(session, "follow_through", f"promise_{status}", "promise", promise.id, was=promise.status)
        promise.status = status
    session.flush()
    return status


def _header(name) -> str:
    return text(name).lstrip("\ufeff").lower().replace(" ", "_").replace("-", "_")


def import_payments_file(path: Union[str, Path], now: Optional[datetime] = None) -> dict:
    """A CSV (UTF-8, UTF-8 with a BOM, or GB18030) or XLSX file with the columns account_id or external_id,
    amount, paid_on, reference and optionally currency. Returns the report: rows read, recorded, duplicates,
    and each rejected row with its number (as a spreadsheet shows it), field and reason."""
    path = Path(path)
    encoding, rows = read_table(path)
    header = [_header(cell) for cell in next(rows, ())]
    missing = [name for name in ("amount", "paid_on", "reference") if name not in header]
    if "account_id" not in header and "external_id" not in header:
        missing.insert(0, "account_id or external_id")
    if missing:
        raise ImportRefused(f"{path.name}: missing column(s): {', '.join(missing)}")
    report = {"file": path.name, "encoding": encoding, "rows": 0, "recorded": 0, "duplicates": 0, "rejected": []}
    chunk: list[tuple[int, PaymentFields]] = []
    for number, cells in enumerate(rows, start=2):
        raw = {name: cell for name, cell in zip(header, cells) if name in FILE_COLUMNS}
        if not any(text(value) for value in raw.values()):
            continue  # a blank line
        report["rows"] += 1
        fields = _parse_row(number, raw, report)
        if fields is not None:
            chunk.append((number, fields))
        if len(chunk) >= FILE_CHUNK_ROWS:
            _write_chunk(chunk, report, now)
            chunk = []
    _write_chunk(chunk, report, now)
    report["rejected"].sort(key=lambda rejection: rejection["row"])
    return report


def _parse_row(number: int, raw: dict, report: dict) -> Optional[PaymentFields]:
    values, field = {}, ""
    try:
        for field in ("account_id", "external_id", "currency", "reference"):
            if text(raw.get(field)):
                values[field] = text(raw.get(field))
        field = "amount"
        values["amount"] = parse_money(raw.get("amount"))
        field = "paid_on"
        values["paid_on"] = parse_date(raw.get("paid_on"))
        return PaymentFields(**values)
    except ValidationError as error:
        for problem in error.errors():
            where = ".".join(str(part) for part in problem["loc"]) or "row"
            report["rejected"].append({"row": number, "field": where, "reason": problem["msg"].removeprefix("Value error, ")})
    except ValueError as error:
        report["rejected"].append({"row": number, "field": field, "reason": str(error)})
    return None


def _write_chunk(chunk: list[tuple[int, PaymentFields]], report: dict, now: Optional[datetime]) -> None:
    with session_scope() as session:
        for number, fields in chunk:
            result = record_payment(session, fields, "file", now)
            if result.status == "recorded":
                report["recorded"] += 1
            elif result.status == "duplicate":
                report["duplicates"] += 1
            else:
                report["rejected"].append({"row": number, "field": result.field, "reason": result.reason})
