"""The REST API (/api): accounts, conversations, promises, handoffs, payments and follow-ups."""
from decimal import Decimal
from typing import Annotated, Optional, Union

from fastapi import APIRouter, Body, Depends, HTTPException, Query
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from gateway.auth import require_admin
from gateway.schemas import (
    AccountFlags,
    AccountIn,
    AccountOut,
    ConversationOut,
    Flag,
    FlagChangeIn,
    FlagRecordOut,
    HandoffOut,
    FollowUpKind,
    FollowUpOut,
    FollowUpStatus,
    PaymentIn,
    PaymentOut,
    PaymentResultOut,
    PromiseOut,
    e164,
)
from kindly.accounts import DuplicateAccount, create_account
from kindly.db import session_scope
from kindly import payments, records
from kindly.models import FLAGS, Account, Conversation, FollowUp, Handoff, Payment, Promise

router = APIRouter(prefix="/api", dependencies=[Depends(require_admin)])

# Row ids are INTEGER columns, 32 bits on PostgreSQL: a larger number names no row, and must never reach the
# database (SQLite raises OverflowError on it, PostgreSQL a DataError).
MAX_ROW_ID = 2**31 - 1
RowId = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]


def db():
    """A read session per request. Writes use session_scope() in the endpoint itself, so they are committed
    before the response is sent (a yield dependency's exit runs after it)."""
    with session_scope() as session:
        yield session


def account_out(account: Account) -> AccountOut:
    return AccountOut(
        **{name: getattr(account, name) for name in AccountOut.model_fields if name not in ("opt_outs", "flags", "flag_history")},
        opt_outs=[{"channel": o.channel, "at": o.at} for o in account.opt_outs],
        flags=AccountFlags(**{flag: flag in account.flags for flag in FLAGS}),
        flag_history=[FlagRecordOut.model_validate(row, from_attributes=True) for row in account.flag_history],
    )


def get_account_or_404(session: Session, account_id: int) -> Account:
    # Path and query ids are RowIds already; an id from a request body may be any integer.
    account = session.get(Account, account_id) if 1 <= account_id <= MAX_ROW_ID else None
    if account is None:
        raise HTTPException(status_code=404, detail=f"account {account_id} not found")
    return account


@router.post("/accounts", status_code=201, response_model=AccountOut)
def post_account(body: AccountIn) -> AccountOut:
    try:
        with session_scope() as session:
            account = create_account(session, body.model_dump())
            session.flush()
            session.refresh(account)
            created = account_out(account)
    except DuplicateAccount as error:
        raise HTTPException(status_code=409, detail=str(error)) from error
    return created


@router.get("/accounts/{account_id}", response_model=AccountOut)
def get_account(account_id: RowId, session: Session = Depends(db)) -> AccountOut:
    return account_out(get_account_or_404(session, account_id))


@router.post("/accounts/{account_id}/flags/{flag}", response_model=AccountOut)
def set_account_flag(account_id: RowId, flag: Flag, body: FlagChangeIn) -> AccountOut:
    """Put a flag in force, with who and why (audited). Setting a flag already in force changes nothing."""
    with session_scope() as session:
        account = get_account_or_404(session, account_id)
        records.set_flag(session, account, flag, f"agent:{body.by}", body.reason)
        session.flush()
        return account_out(account)


@router.post("/accounts/{account_id}/flags/{flag}/clear", response_model=AccountOut)
def clear_account_flag(account_id: RowId, flag: Flag, body: FlagChangeIn) -> AccountOut:
    """Lift a flag, with who and why (audited). 409 when the flag is not in force."""
    with session_scope() as session:
        account = get_account_or_404(session, account_id)
        if records.clear_flag(session, account, flag, f"agent:{body.by}", body.reason) is None:
            raise HTTPException(status_code=409, detail=f"the flag {flag} is not in force on account {account_id}")
        session.flush()
        return account_out(account)


@router.get("/accounts", response_model=list[AccountOut])
def find_accounts(phone: Optional[str] = None, session: Session = Depends(db)) -> list[AccountOut]:
    query = select(Account).order_by(Account.id)
    if phone is not None:
        try:
            query = query.where(Account.phone == e164(phone))
        except ValueError as error:
            raise HTTPException(status_code=422, detail=str(error)) from error
    return [account_out(a) for a in session.scalars(query.limit(500))]


@router.get("/conversations", response_model=list[ConversationOut])
def list_conversations(account_id: RowId, session: Session = Depends(db)) -> list[ConversationOut]:
    get_account_or_404(session, account_id)
    conversations = session.scalars(
        select(Conversation)
        .where(Conversation.account_id == account_id)
        .options(selectinload(Conversation.turns))
        .order_by(Conversation.started_at)
    )
    return [
        ConversationOut(
            **{name: getattr(c, name) for name in ConversationOut.model_fields if name != "transcript"},
            transcript=[{"role": t.role, "text": t.text, "at": t.at} for t in c.turns],
        )
        for c in conversations
    ]


@router.get("/promises", response_model=list[PromiseOut])
def list_promises(account_id: RowId, session: Session = Depends(db)) -> list[PromiseOut]:
    get_account_or_404(session, account_id)
    promises = session.scalars(
        select(Promise).where(Promise.account_id == account_id).options(selectinload(Promise.schedule)).order_by(Promise.id)
    )
    return [
        PromiseOut(
            **{name: getattr(p, name) for name in PromiseOut.model_fields if name not in ("schedule", "paid")},
            paid=sum((s.paid for s in p.schedule), Decimal("0")),
            schedule=[{"seq": s.seq, "due_date": s.due_date, "amount": s.amount, "status": s.status, "paid": s.paid} for s in p.schedule],
        )
        for p in promises
    ]


@router.get("/handoffs", response_model=list[HandoffOut])
def list_handoffs(
    account_id: Optional[RowId] = None,
    status: Optional[str] = Query(None, pattern="^(waiting|claimed|resolved)$"),
    session: Session = Depends(db),
) -> list[HandoffOut]:
    query = select(Handoff).order_by(Handoff.id)
    if account_id is not None:
        query = query.where(Handoff.account_id == account_id)
    if status is not None:
        query = query.where(Handoff.status == status)
    return [HandoffOut.model_validate(h, from_attributes=True) for h in session.scalars(query.limit(500))]


@router.post("/payments", response_model=list[PaymentResultOut])
def post_payments(body: Annotated[Union[PaymentIn, list[PaymentIn]], Body()]) -> list[PaymentResultOut]:
    """The bank's payments feed, one payment or a list (at most 1000): each recorded once by its reference and
    matched to the account's promise. Each gets a result: recorded, duplicate, or rejected with the reason."""
    items = body if isinstance(body, list) else [body]
    if len(items) > 1000:
        raise HTTPException(status_code=422, detail="at most 1000 payments in one request")
    with session_scope() as session:
        return [PaymentResultOut(**vars(payments.record_payment(session, item, "api"))) for item in items]


@router.get("/payments", response_model=list[PaymentOut])
def list_payments(account_id: RowId, session: Session = Depends(db)) -> list[PaymentOut]:
    get_account_or_404(session, account_id)
    rows = session.scalars(select(Payment).where(Payment.account_id == account_id).order_by(Payment.paid_on, Payment.id))
    return [PaymentOut.model_validate(p, from_attributes=True) for p in rows]


@router.get("/follow-ups", response_model=list[FollowUpOut])
def list_follow_ups(
    account_id: Optional[RowId] = None,
    status: Optional[FollowUpStatus] = None,
    kind: Optional[FollowUpKind] = None,
    session: Session = Depends(db),
) -> list[FollowUpOut]:
    """Reminders, callbacks, re-contacts and payment checks, with what became of them (kindly/tasks.py);
    `?status=failed` lists the ones that failed for good, each with its last error."""
    query = select(FollowUp).order_by(FollowUp.id)
    if account_id is not None:
        query = query.where(FollowUp.account_id == account_id)
    if status is not None:
        query = query.where(FollowUp.status == status)
    if kind is not None:
        query = query.where(FollowUp.kind == kind)
    return [FollowUpOut.model_validate(f, from_attributes=True) for f in session.scalars(query.limit(500))]
