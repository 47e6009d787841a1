"""Engine and session factory. SQLite by default, PostgreSQL by DATABASE_URL."""
from contextlib import contextmanager
from functools import lru_cache
from typing import Iterator

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from kindly.settings import settings


def normalise_url(url: str) -> str:
    # psycopg 3 is the installed driver; accept the plain postgresql:// form too.
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


# A write waits this long for SQLite's lock, then fails: Twilio gives a webhook 15 s, and a customer whose turn
# cannot be written must still hear an apology in time.
SQLITE_BUSY_SECONDS = 2


def _primary_message_only(context) -> None:
    """PostgreSQL adds a DETAIL to some errors ("Failing row contains (1, Alex Morgan, +1415...)", "Key (x)=(...)"):
    keep only the primary message, so the values hide_parameters keeps out don't come back that way."""
    error = context.original_exception
    primary = getattr(getattr(error, "diag", None), "message_primary", None)
    if primary and context.sqlalchemy_exception is not None:
        error.args = (primary,)
        context.sqlalchemy_exception.args = (f"({type(error).__module__}.{type(error).__name__}) {primary}",)


def make_engine(url: str) -> Engine:
    """A database error's message, and so the traceback a server logs, names the statement but never its values
    (a name, a phone number, a date-of-birth hash): hide_parameters, and _primary_message_only."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(
            url, hide_parameters=True, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_SECONDS}
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            # WAL lets the gateway and the action server write the same file concurrently.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_SECONDS * 1000}")
            cursor.close()

    else:
        engine = create_engine(url, hide_parameters=True, pool_pre_ping=True, pool_size=10, max_overflow=20)
    event.listen(engine, "handle_error", _primary_message_only)
    return engine


@lru_cache(maxsize=None)
def engine_for(url: str) -> Engine:
    return make_engine(url)


def get_engine() -> Engine:
    return engine_for(settings.database_url)


@lru_cache(maxsize=None)
def _session_factory(url: str) -> sessionmaker:
    return sessionmaker(bind=engine_for(url), expire_on_commit=False)


@contextmanager
def session_scope() -> Iterator[Session]:
    """A unit of work: commits on success, rolls back on error."""
    session = _session_factory(settings.database_url)()
    try:
        yield session
        session.commit()
    except Exception:
        session.rollback()
        raise
    finally:
        session.close()
