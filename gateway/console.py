"""The agent console: a password login, the handoff queue, and one page per handoff with the context, the
transcript, a reply box (SMS) and the resolution form.

- Sessions: each login gets a random token, sent only in the cookie. The database keeps a keyed hash of it with
  its times (console_sessions), so every gateway worker knows it; it ends after 8 hours idle, 12 hours in all,
  at logout, or when CONSOLE_PASSWORD or SECRET_KEY changes.
- Throttling: wrong passwords are counted in the database, per client address and overall. Past
  FAILURES_PER_IP (or FAILURES_OVERALL) within FAILURE_WINDOW, logins, right or wrong, get 429 with Retry-After
  until enough of them age out. A successful login clears its address's count. Logins are audited.
- Forms: every POST carries a CSRF token derived from the session's token; a POST with another Origin than
  PUBLIC_BASE_URL's is refused. The cookie is HttpOnly, SameSite=Strict, Path=/console, and Secure behind HTTPS.
"""
import hashlib
import hmac
import math
import secrets
from datetime import datetime, timedelta
from html import escape
from typing import Optional
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from gateway.api import RowId
from gateway.operations import agent_reply, get_handoff, resolve_handoff
from gateway.schemas import AgentMessageIn, Disposition, ResolveIn
from kindly import records
from kindly.db import session_scope
from kindly.models import ConsoleLoginFailure, ConsoleSession, Handoff, as_utc, utcnow
from kindly.settings import settings

router = APIRouter(prefix="/console", include_in_schema=False)
COOKIE = "kindly_console_session"
DISPOSITIONS = Disposition.__args__
IDLE, LIFETIME = timedelta(hours=8), timedelta(hours=12)
FAILURE_WINDOW = timedelta(minutes=15)
FAILURES_PER_IP, FAILURES_OVERALL = 5, 100
LOGIN_LOCK = 0x6B696E646C79  # PostgreSQL advisory lock that serialises logins across workers


# ------------------------------------------------------------------------------------------------ sessions

def _token_hash(token: str) -> str:
    # Keyed with the password and SECRET_KEY, so a change of either ends every session; and a stored hash says
    # nothing about the password to whoever reads the database without the token.
    key = f"{settings.secret_key}\0{settings.console_password}".encode()
    return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()


def _csrf_token(token: str) -> str:
    return hmac.new(settings.secret_key.encode(), b"console-csrf\0" + token.encode(), hashlib.sha256).hexdigest()


def _start_session(session: Session, now: datetime) -> str:
    session.execute(delete(ConsoleSession).where(
        or_(ConsoleSession.last_seen_at <= now - IDLE, ConsoleSession.created_at <= now - LIFETIME)))
    token = secrets.token_urlsafe(32)
    session.add(ConsoleSession(token_hash=_token_hash(token), created_at=now, last_seen_at=now))
    return token


def _live_token(request: Request) -> Optional[str]:
    """The cookie's token if it names a live session (which this request keeps alive), else None."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    now = utcnow()
    with session_scope() as session:
        touched = session.execute(
            update(ConsoleSession)
            .where(ConsoleSession.token_hash == _token_hash(token), ConsoleSession.last_seen_at > now - IDLE,
                   ConsoleSession.created_at > now - LIFETIME)
            .values(last_seen_at=now)
        )
    return token if touched.rowcount == 1 else None


def _check_origin(request: Request) -> None:
    origin = request.headers.get("origin")
    public = urlsplit(settings.public_base_url)
    if origin is not None and origin.rstrip("/").lower() != f"{public.scheme}://{public.netloc}".lower():
        raise HTTPException(status_code=403, detail="this form was sent from another site")


def _form_session(request: Request, csrf: str) -> str:
    """The session token behind a console POST: the Origin (when sent) is ours, the session is live and the form
    carries that session's CSRF token."""
    _check_origin(request)
    token = _live_token(request)
    if token is None:
        raise HTTPException(status_code=401, detail="log in first")
    if not hmac.compare_digest(csrf.encode(), _csrf_token(token).encode()):
        raise HTTPException(status_code=403, detail="this form is not from your session: reload the page")
    return token


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


# ---------------------------------------------------------------------------------------------- throttling

def login_retry_after(session: Session, ip: str, now: datetime) -> Optional[int]:
    """Seconds until a login from `ip` may be tried, or None when it may be now."""
    waits = [_wait(session, FAILURES_PER_IP, now, ConsoleLoginFailure.ip == ip), _wait(session, FAILURES_OVERALL, now)]
    return max((w for w in waits if w), default=None)


def _wait(session: Session, limit: int, now: datetime, *where) -> Optional[int]:
    # Locked while `limit` failures are in the window: until the limit-th most recent one leaves it.
    limit_th = session.scalar(
        select(ConsoleLoginFailure.at)
        .where(ConsoleLoginFailure.at > now - FAILURE_WINDOW, ConsoleLoginFailure.at <= now, *where)
        .order_by(ConsoleLoginFailure.at.desc()).offset(limit - 1).limit(1)
    )
    return max(1, math.ceil((as_utc(limit_th) + FAILURE_WINDOW - now).total_seconds())) if limit_th else None


def record_login_failure(session: Session, ip: str, now: datetime) -> None:
    session.execute(delete(ConsoleLoginFailure).where(ConsoleLoginFailure.at <= now - FAILURE_WINDOW))
    session.add(ConsoleLoginFailure(ip=ip, at=now))


def clear_login_failures(session: Session, ip: str) -> None:
    session.execute(delete(ConsoleLoginFailure).where(ConsoleLoginFailure.ip == ip))


def serialise_logins(session: Session) -> None:
    """One login at a time across every worker, so concurrent guesses can't all pass the count before any is
    recorded. SQLite: take the write lock now; PostgreSQL: an advisory lock until the transaction ends."""
    if session.get_bind().dialect.name == "sqlite":
        session.connection().exec_driver_sql("BEGIN IMMEDIATE")
    else:
        session.execute(select(func.pg_advisory_xact_lock(LOGIN_LOCK)))


# --------------------------------------------------------------------------------------------------- pages

def _page(title: str, body: str, status_code: int = 200, headers: Optional[dict] = None) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
        "<style>body{font-family:sans-serif;max-width:960px;margin:2em auto}td,th{padding:4px 8px;text-align:left}"
        ".bot{color:#555}.user{color:#036}.agent{color:#063}</style></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>",
        status_code=status_code, headers=headers,
    )


def _login_page(error: str = "", status_code: int = 200, headers: Optional[dict] = None) -> HTMLResponse:
    return _page("Kindly agent console", f"<p style='color:#a00'>{escape(error)}</p>"
                 "<form method='post' action='/console/login'><input type='password' name='password' placeholder='password' autofocus>"
                 "<button>Log in</button></form>", status_code, headers)


def _csrf_field(token: str) -> str:
    return f"<input type='hidden' name='csrf' value='{_csrf_token(token)}'>"


@router.get("/login")
def login_form() -> HTMLResponse:
    return _login_page()


@router.post("/login")
def login(request: Request, password: str = Form("")):
    _check_origin(request)
    ip = _client_ip(request)
    with session_scope() as session:
        serialise_logins(session)
        now = utcnow()  # after the lock: the logins that held it before are all in the past
        wait = login_retry_after(session, ip, now)
        if wait is None:
            # Digests of equal length, so the comparison takes the same time whatever was typed.
            right = hmac.compare_digest(hashlib.sha256(password.encode()).digest(),
                                        hashlib.sha256(settings.console_password.encode()).digest())
            if right:
                clear_login_failures(session, ip)
                token = _start_session(session, now)
            else:
                record_login_failure(session, ip, now)
            records.audit(session, "console", "console_login" if right else "console_login_failed", "console", ip)
    if wait is not None:
        return _login_page(f"Too many failed logins. Try again in {math.ceil(wait / 60)} minutes.", 429,
                           {"Retry-After": str(wait)})
    if not right:
        return _login_page("Wrong password.", 401)
    response = RedirectResponse("/console", status_code=303)
    response.set_cookie(COOKIE, token, max_age=int(LIFETIME.total_seconds()), path="/console",
                        secure=settings.public_base_url.startswith("https"), httponly=True, samesite="strict")
    return response


@router.post("/logout")
def logout(request: Request, csrf: str = Form("")):
    token = _form_session(request, csrf)
    with session_scope() as session:
        session.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == _token_hash(token)))
        records.audit(session, "console", "console_logout", "console", _client_ip(request))
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(COOKIE, path="/console", secure=settings.public_base_url.startswith("https"),
                           httponly=True, samesite="strict")
    return response


@router.get("")
def queue(request: Request):
    token = _live_token(request)
    if token is None:
        return RedirectResponse("/console/login", status_code=303)
    with session_scope() as session:
        handoffs = list(session.scalars(select(Handoff).where(Handoff.status != "resolved").order_by(Handoff.id)))
        rows = "".join(
            f"<tr><td><a href='/console/handoffs/{h.id}'>#{h.id}</a></td><td>{escape(h.reason)}</td><td>{h.channel}</td>"
            f"<td>{h.status}</td><td>{h.created_at:%Y-%m-%d %H:%M}</td><td>{escape(h.summary[:140])}</td></tr>"
            for h in handoffs
        )
    logout_form = f"<form method='post' action='/console/logout'>{_csrf_field(token)}<button>Log out</button></form>"
    return _page("Handoffs waiting", f"{logout_form}<table><tr><th>id</th><th>reason</th><th>channel</th><th>status</th>"
                                     f"<th>since</th><th>summary</th></tr>{rows}</table>")


@router.get("/handoffs/{handoff_id}")
def handoff_page(handoff_id: RowId, request: Request):
    token = _live_token(request)
    if token is None:
        return RedirectResponse("/console/login", status_code=303)
    with session_scope() as session:
        detail = get_handoff(handoff_id, session)
    lines = "".join(f"<p class='{t.role}'><b>{t.role}</b> {escape(t.text)}</p>" for t in detail.transcript)
    lines += "".join(f"<p class='held'><b>held</b> {escape(h.text)} <i>(outside the calling window: sends at "
                     f"{h.sends_at:%Y-%m-%d %H:%M} UTC)</i></p>" for h in detail.held_replies)
    options = "".join(f"<option>{d}</option>" for d in DISPOSITIONS)
    csrf = _csrf_field(token)
    body = (
        f"<p><a href='/console'>back to the queue</a></p><p><b>{escape(detail.reason)}</b> by {detail.channel}, "
        f"status {detail.status}</p><p>{escape(detail.summary)}</p><h2>Transcript</h2>{lines}"
        f"<h2>Reply by SMS</h2><form method='post' action='/console/handoffs/{handoff_id}/reply'>{csrf}"
        "<textarea name='text' rows='3' cols='80'></textarea><br><button>Send</button></form>"
        f"<h2>Resolve</h2><form method='post' action='/console/handoffs/{handoff_id}/resolve'>{csrf}"
        f"<select name='disposition'>{options}</select> <input name='note' placeholder='note' size='50'> "
        "<label><input type='checkbox' name='resume_bot' value='true' checked> let the bot resume</label> "
        "<button>Resolve</button></form>"
    )
    return _page(f"Handoff #{handoff_id}", body)


@router.post("/handoffs/{handoff_id}/reply")
def reply(handoff_id: RowId, request: Request, text: str = Form(...), csrf: str = Form("")):
    _form_session(request, csrf)
    agent_reply(handoff_id, AgentMessageIn(text=text), Response())
    return RedirectResponse(f"/console/handoffs/{handoff_id}", status_code=303)


@router.post("/handoffs/{handoff_id}/resolve")
def resolve(handoff_id: RowId, request: Request, disposition: Disposition = Form(...), note: str = Form(""),
            resume_bot: bool = Form(False), csrf: str = Form("")):
    _form_session(request, csrf)
    resolve_handoff(handoff_id, ResolveIn(disposition=disposition, note=note, resume_bot=resume_bot))
    return RedirectResponse("/console", status_code=303)
