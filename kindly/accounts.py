"""Creating accounts: the date of birth is kept only as a keyed hash, and the segment follows the policy."""
from sqlalchemy import select
from sqlalchemy.orm import Session

from kindly.models import Account
from kindly.policy import load_policy, segment_for
from kindly.privacy import dob_hmac
from kindly.records import audit


class DuplicateAccount(ValueError):
    pass


def create_account(session: Session, fields: dict, actor: str = "api") -> Account:
    """`fields` are AccountIn's: date_of_birth is hashed and never stored."""
    fields = dict(fields)
    if session.scalar(select(Account.id).where(Account.external_id == fields["external_id"])):
        raise DuplicateAccount(f"an account with external_id {fields['external_id']!r} already exists")
    dob = fields.pop("date_of_birth")
    fields["segment"] = fields.get("segment") or segment_for(fields["days_past_due"], load_policy())
    account = Account(**fields, dob_hmac=dob_hmac(dob))
    session.add(account)
    session.flush()
    audit(session, actor, "account_created", "account", account.id, external_id=account.external_id)
    return account
