"""Loads the demo accounts used by `make run` and `make chat` (idempotent)."""
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select

from kindly.accounts import create_account
from kindly.db import session_scope
from kindly.models import Account

TODAY = date.today()

DEMO_ACCOUNTS = [
    dict(external_id="DEMO-EN-1", name="Alex Morgan", phone="+14155550101", language="en", timezone="America/New_York",
         country="US", currency="USD", balance=Decimal("1250.00"), minimum_due=Decimal("85.00"), days_past_due=12,
         card_last4="4242", date_of_birth=date(1985, 3, 5)),
    dict(external_id="DEMO-EN-2", name="Jordan Lee", phone="+14155550102", language="en", timezone="America/Los_Angeles",
         country="US", currency="USD", balance=Decimal("3600.00"), minimum_due=Decimal("180.00"), days_past_due=45,
         card_last4="1881", date_of_birth=date(1979, 11, 23)),
    dict(external_id="DEMO-EN-3", name="Sam Carter", phone="+14155550103", language="en", timezone="America/Chicago",
         country="US", currency="USD", balance=Decimal("980.00"), minimum_due=Decimal("60.00"), days_past_due=75,
         card_last4="7310", date_of_birth=date(1990, 7, 14), segment="flagged"),
    dict(external_id="DEMO-ZH-1", name="王芳", phone="+8613800138001", language="zh", timezone="Asia/Shanghai",
         country="CN", currency="CNY", balance=Decimal("8000.00"), minimum_due=Decimal("400.00"), days_past_due=10,
         card_last4="6622", date_of_birth=date(1988, 2, 3)),
    dict(external_id="DEMO-ZH-2", name="李伟", phone="+8613800138002", language="zh", timezone="Asia/Shanghai",
         country="CN", currency="CNY", balance=Decimal("24000.00"), minimum_due=Decimal("1200.00"), days_past_due=60,
         card_last4="9051", date_of_birth=date(1975, 6, 18)),
    dict(external_id="DEMO-ZH-3", name="张敏", phone="+8613800138003", language="zh", timezone="Asia/Shanghai",
         country="CN", currency="CNY", balance=Decimal("5600.00"), minimum_due=Decimal("300.00"), days_past_due=90,
         card_last4="3307", date_of_birth=date(1983, 9, 9), segment="flagged"),
]


def seed() -> list[str]:
    created = []
    with session_scope() as session:
        for fields in DEMO_ACCOUNTS:
            if session.scalar(select(Account.id).where(Account.external_id == fields["external_id"])):
                continue
            fields = {**fields, "due_date": TODAY - timedelta(days=fields["days_past_due"])}
            create_account(session, fields, actor="demo-seed")
            created.append(fields["external_id"])
    return created


def describe() -> str:
    lines = ["Demo accounts (external id, language, phone, date of birth for verification):"]
    for a in DEMO_ACCOUNTS:
        lines.append(f"  {a['external_id']:<10} {a['language']}  {a['phone']:<15} {a['date_of_birth']}  {a['name']}")
    return "\n".join(lines)


if __name__ == "__main__":
    seed()
    print(describe())
