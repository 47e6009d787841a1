"""The one Celery app: every piece of background work runs on it (kindly/tasks.py, and the modules in
TASK_MODULES).

`KINDLY_BROKER_URL` picks the broker. In production: Redis (`redis://host:6379/0`) or RabbitMQ
(`amqp://user:password@host:5672//`). By default, the broker lives in a SQLite file under var/ (kombu's
SQLAlchemy transport), so `make run` needs no server. That one rather than kombu's filesystem transport:
taking a message is one transaction (BEGIN IMMEDIATE, then the row is marked delivered), so a message goes to
one consumer only, and a message is never read half-written; the filesystem transport moves a file to read it
without the writer's lock, and can read one that is still being written.

No results are kept: every task writes what it did to the database (follow-ups, promises, audit).
Start a worker with `celery -A kindly.queue worker`, the schedule with `celery -A kindly.queue beat`
(scripts/services.py has both; see the README for more workers on other machines).
"""
import os
from datetime import datetime, timedelta

from celery import Celery
from celery.signals import worker_init
from sqlalchemy import create_engine, text

from kindly.settings import ROOT

EMBEDDED_BROKER_URL = f"sqla+sqlite:///{ROOT / 'var' / 'celery-broker.db'}"
TASK_MODULES = ["kindly.tasks", "kindly.campaigns"]
SWEEP_SECONDS = 60.0
# The SQLAlchemy transport keeps each delivered message as a row marked invisible; a day later it goes.
KEEP_DELIVERED = timedelta(days=1)


def broker_url() -> str:
    return os.environ.get("KINDLY_BROKER_URL", EMBEDDED_BROKER_URL)


def is_embedded(url: str) -> bool:
    return url.startswith("sqla+")


def _configure(url: str) -> dict:
    schedule = {"follow-through-sweep": {"task": "kindly.sweep", "schedule": SWEEP_SECONDS}}
    options = {}
    if is_embedded(url):
        if url.startswith("sqla+sqlite:///"):
            (ROOT / "var").mkdir(exist_ok=True)
            # kombu drops a message whose INSERT fails (it only rolls back): wait for SQLite's lock, don't fail.
            options = {"connect_args": {"timeout": 30}}
        schedule["purge-delivered-messages"] = {"task": "kindly.purge_broker", "schedule": 3600.0}
    return dict(
        broker_url=url,
        broker_transport_options=options,
        broker_connection_retry_on_startup=True,
        task_ignore_result=True,
        # Tasks are idempotent, so a task whose worker died is run again rather than lost.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue="kindly",
        timezone="UTC",
        enable_utc=True,
        beat_schedule=schedule,
        beat_schedule_filename=str(ROOT / "var" / "celerybeat-schedule"),
    )


app = Celery("kindly", include=TASK_MODULES)
app.conf.update(_configure(broker_url()))


@worker_init.connect
def _refuse_a_wrong_dob_key(**_) -> None:
    """A worker imports accounts: under another key than the gateway's, no customer could verify."""
    from kindly.db import get_engine
    from kindly.privacy import DobKeyMismatch, check_dob_key

    try:
        check_dob_key(get_engine())
    except DobKeyMismatch as error:
        raise SystemExit(f"refusing to start: {error}") from error  # Celery logs and ignores a signal's Exception


@app.task(name="kindly.purge_broker")
def purge_broker() -> int:
    """Drop the embedded broker's delivered messages older than KEEP_DELIVERED; nothing to do on Redis or RabbitMQ."""
    url = app.conf.broker_url
    if not is_embedded(url):
        return 0
    engine = create_engine(url.removeprefix("sqla+"), connect_args={"timeout": 30} if "sqlite" in url else {})
    try:
        with engine.begin() as connection:
            deleted = connection.execute(
                text("DELETE FROM kombu_message WHERE visible = :no AND timestamp < :before"),
                # kombu stamps the delivery with the local time, naive.
                {"no": False, "before": datetime.now() - KEEP_DELIVERED},
            )
            return deleted.rowcount
    finally:
        engine.dispose()
