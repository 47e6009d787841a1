"""The same models, migrations and promise code on PostgreSQL (tests/servers.py: the local server, or a
throwaway one), in a database the test creates and drops."""
import os
import subprocess
import sys
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from kindly.accounts import create_account
from kindly.db import make_engine
from kindly.migrate import upgrade
from kindly.models import Conversation, Promise
from kindly.plans import installment_plan
from kindly.policy import load_policy
from kindly.records import record_promise


def test_migrations_and_a_promise_round_trip_on_postgresql(postgres_url):
    upgrade(postgres_url)
    engine = make_engine(postgres_url)
    try:
        with Session(engine) as session:
            account = create_account(session, dict(
                external_id="PG-1", name="李伟", phone="+8613800138009", language="zh", timezone="Asia/Shanghai",
                country="CN", currency="CNY", balance=Decimal("24000.01"), minimum_due=Decimal("1200.00"),
                days_past_due=60, due_date=date.today() - timedelta(days=60), card_last4="9051",
                date_of_birth=date(1975, 6, 18),
            ))
            conversation = Conversation(account_id=account.id, channel="voice", direction="outbound", language="zh")
            session.add(conversation)
            session.flush()
            plan = installment_plan(account.balance, 12, date.today() + timedelta(days=10), load_policy())
            first = record_promise(session, account, conversation, plan)
            assert record_promise(session, account, conversation, plan).id == first.id
            session.commit()
        with Session(engine) as session:
            promise = session.scalar(select(Promise))
            assert promise.plan_type == "installment" and promise.total == Decimal("24000.01")
            assert isinstance(promise.amount, Decimal) and promise.amount == Decimal("2000.00")
            assert sum(part.amount for part in promise.schedule) == Decimal("24000.01")
            assert promise.schedule[-1].amount == Decimal("2000.01")
    finally:
        engine.dispose()


def test_the_campaign_dispatcher_tests_pass_on_postgresql(postgres_url):
    """tests/unit/test_campaigns.py again, with the test database on PostgreSQL, the production profile's: the
    claims (UPDATE ... RETURNING), the two racing dispatchers, the pace, pause and resume."""
    env = {**os.environ, "KINDLY_TEST_DATABASE_URL": postgres_url}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(Path(__file__).parent / "test_campaigns.py")],
                         env=env, cwd=Path(__file__).parents[2], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in run.stdout.splitlines()[-1], run.stdout[-500:]
