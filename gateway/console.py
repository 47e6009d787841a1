"""The agent console: a password login, the handoff queue, and one page per handoff with the context, the
transcript, a reply box (SMS) and the resolution form."""
import hashlib
import hmac
from html import escape

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select

from gateway.operations import agent_reply, get_handoff, resolve_handoff
from gateway.schemas import AgentMessageIn, Disposition, ResolveIn
from kindly.db import session_scope
from kindly.models import Handoff
from kindly.settings import settings

router = APIRouter(prefix="/console", include_in_schema=False)
COOKIE = "kindly_console"
DISPOSITIONS = Disposition.__args__


def _token() -> str:
    return hmac.new(settings.secret_key.encode(), settings.console_password.encode(), hashlib.sha256).hexdigest()


def _logged_in(request: Request) -> bool:
    return hmac.compare_digest(request.cookies.get(COOKIE, ""), _token())


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
        "<style>body{font-family:sans-serif;max-width:960px;margin:2em auto}td,th{padding:4px 8px;text-align:left}"
        ".bot{color:#555}.user{color:#036}.agent{color:#063}</style></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>"
    )


def _login_page(error: str = "") -> HTMLResponse:
    return _page("Kindly agent console", f"<p style='color:#a00'>{escape(error)}</p>"
                 "<form method='post' action='/console/login'><input type='password' name='password' placeholder='password' autofocus>"
                 "<button>Log in</button></form>")


@router.get("/login")
def login_form() -> HTMLResponse:
    return _login_page()


@router.post("/login")
def login(password: str = Form(...)):
    if not hmac.compare_digest(password.encode(), settings.console_password.encode()):
        return _login_page("Wrong password.")
    response = RedirectResponse("/console", status_code=303)
    response.set_cookie(COOKIE, _token(), httponly=True, samesite="strict")
    return response


@router.get("")
def queue(request: Request):
    if not _logged_in(request):
        return RedirectResponse("/console/login", status_code=303)
    with session_scope() as session:
        handoffs = list(session.scalars(select(Handoff).where(Handoff.status != "resolved").order_by(Handoff.id)))
        rows = "".join(
            f"<tr><td><a href='/console/handoffs/{h.id}'>#{h.id}</a></td><td>{escape(h.reason)}</td><td>{h.channel}</td>"
            f"<td>{h.status}</td><td>{h.created_at:%Y-%m-%d %H:%M}</td><td>{escape(h.summary[:140])}</td></tr>"
            for h in handoffs
        )
    return _page("Handoffs waiting", f"<table><tr><th>id</th><th>reason</th><th>channel</th><th>status</th><th>since</th><th>summary</th></tr>{rows}</table>")


@router.get("/handoffs/{handoff_id}")
def handoff_page(handoff_id: int, request: Request):
    if not _logged_in(request):
        return RedirectResponse("/console/login", status_code=303)
    with session_scope() as session:
        detail = get_handoff(handoff_id, session)
    lines = "".join(f"<p class='{t.role}'><b>{t.role}</b> {escape(t.text)}</p>" for t in detail.transcript)
    options = "".join(f"<option>{d}</option>" for d in DISPOSITIONS)
    body = (
        f"<p><a href='/console'>back to the queue</a></p><p><b>{escape(detail.reason)}</b> by {detail.channel}, "
        f"status {detail.status}</p><p>{escape(detail.summary)}</p><h2>Transcript</h2>{lines}"
        f"<h2>Reply by SMS</h2><form method='post' action='/console/handoffs/{handoff_id}/reply'>"
        "<textarea name='text' rows='3' cols='80'></textarea><br><button>Send</button></form>"
        f"<h2>Resolve</h2><form method='post' action='/console/handoffs/{handoff_id}/resolve'>"
        f"<select name='disposition'>{options}</select> <input name='note' placeholder='note' size='50'> "
        "<label><input type='checkbox' name='resume_bot' value='true' checked> let the bot resume</label> "
        "<button>Resolve</button></form>"
    )
    return _page(f"Handoff #{handoff_id}", body)


@router.post("/handoffs/{handoff_id}/reply")
def reply(handoff_id: int, request: Request, text: str = Form(...)):
    if not _logged_in(request):
        raise HTTPException(status_code=401, detail="log in first")
    agent_reply(handoff_id, AgentMessageIn(text=text))
    return RedirectResponse(f"/console/handoffs/{handoff_id}", status_code=303)


@router.post("/handoffs/{handoff_id}/resolve")
def resolve(handoff_id: int, request: Request, disposition: str = Form(...), note: str = Form(""), resume_bot: bool = Form(False)):
    if not _logged_in(request):
        raise HTTPException(status_code=401, detail="log in first")
    resolve_handoff(handoff_id, ResolveIn(disposition=disposition, note=note, resume_bot=resume_bot))
    return RedirectResponse("/console", status_code=303)
