"""The agent console over real HTTP against the stack's gateway: sessions, login throttling, CSRF and the cookie.
The throttle's counting itself (per address, overall, the window) is also tested directly on the database."""
import hashlib
import hmac
import itertools
import re
import secrets
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from gateway.console import (COOKIE, FAILURE_WINDOW, FAILURES_OVERALL, FAILURES_PER_IP, LOGIN_LOCK,
                             clear_login_failures, login_retry_after, record_login_failure, serialise_logins)
from kindly.db import make_engine, session_scope
from kindly.migrate import upgrade
from kindly.models import AuditLog, ConsoleLoginFailure, ConsoleSession, utcnow
from kindly.settings import settings
from scripts import services
from tests.conftest import GATEWAY_PORT, GATEWAY_URL, SIMULATOR_URL, find_leaks, watch_for_leaks
from tests.e2e.helpers import new_account
from tests.e2e.twilio_peer import replies, sms

PASSWORD = settings.console_password
SPARE_PORT = GATEWAY_PORT + 13  # a second gateway on the same database, next to the stack's ports
watch_for_leaks(PASSWORD)
CHROMIUM = Path("/usr/bin/chromium")  # Debian's package; playwright never downloads a browser here
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"]


def login(password: str = PASSWORD, base: str = GATEWAY_URL, **headers) -> httpx.Response:
    return httpx.post(f"{base}/console/login", data={"password": password}, headers=headers, timeout=30)


def token_of(response: httpx.Response) -> str:
    assert response.status_code == 303 and response.headers["location"] == "/console", response.text
    return response.cookies[COOKIE]


def agent(token: str, base: str = GATEWAY_URL) -> httpx.Client:
    """A browser holding the session cookie."""
    client = httpx.Client(base_url=base, timeout=30)
    client.cookies.set(COOKIE, token)
    return client


def logged_in(token: str, base: str = GATEWAY_URL) -> bool:
    with agent(token, base) as browser:
        page = browser.get("/console")
    assert page.status_code in (200, 303), page.text
    return page.status_code == 200 and "Handoffs waiting" in page.text


def csrf_on(page: httpx.Response) -> str:
    assert page.status_code == 200, page.text
    [value] = set(re.findall(r"name='csrf' value='([^']*)'", page.text))
    return value


def cookie_attributes(response: httpx.Response) -> dict:
    [header] = [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{COOKIE}=")]
    name_value, *attributes = [part.strip() for part in header.split(";")]
    return {a.split("=", 1)[0].lower(): (a.split("=", 1)[1] if "=" in a else True) for a in attributes}


@contextmanager
def spare_gateway(logs, name: str, **env):
    """Another gateway on the stack's database, as another worker (or the same one restarted) would be."""
    env = services.base_env(**{"PUBLIC_BASE_URL": f"http://127.0.0.1:{SPARE_PORT}", **env})
    process = services.start_gateway(SPARE_PORT, env, logs / f"{name}.log")
    try:
        services.wait_until_up(f"http://127.0.0.1:{SPARE_PORT}/health", process)
        yield f"http://127.0.0.1:{SPARE_PORT}"
    finally:
        services.stop(process)


# ------------------------------------------------------------------------------------------------ sessions

def test_each_login_gets_its_own_random_token_in_a_strict_cookie(stack):
    first, second = login(), login()
    token, other = token_of(first), token_of(second)
    assert token != other and len(token) >= 43  # 32 random bytes
    old_token = hmac.new(settings.secret_key.encode(), PASSWORD.encode(), hashlib.sha256).hexdigest()
    assert old_token not in (token, other)
    flags = cookie_attributes(first)
    assert flags["httponly"] is True and flags["samesite"].lower() == "strict" and flags["path"] == "/console"
    assert "secure" not in flags  # PUBLIC_BASE_URL is http here; see the spare gateway behind https below
    assert logged_in(token) and logged_in(other)
    # Only a hash is kept: neither token (nor the password) is in any table or any log.
    assert find_leaks([token, other, PASSWORD], stack["logs"], [settings.database_url]) == []
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(ConsoleSession)) >= 2


def test_forged_cookies_are_refused(stack):
    old_token = hmac.new(settings.secret_key.encode(), PASSWORD.encode(), hashlib.sha256).hexdigest()
    for forged in (old_token, secrets.token_urlsafe(32), hashlib.sha256(PASSWORD.encode()).hexdigest()):
        assert not logged_in(forged)
        with agent(forged) as browser:
            assert browser.get("/console/handoffs/1").status_code == 303
            assert browser.post("/console/handoffs/1/reply", data={"text": "hi", "csrf": "x"}).status_code == 401


def test_logout_ends_the_session(stack):
    token = token_of(login())
    with agent(token) as browser:
        csrf = csrf_on(browser.get("/console"))
        assert browser.post("/console/logout").status_code == 403  # no CSRF token: nothing happens
        assert logged_in(token)
        out = browser.post("/console/logout", data={"csrf": csrf})
    assert out.status_code == 303 and out.headers["location"] == "/console/login"
    assert cookie_attributes(out)["max-age"] == "0"
    assert not logged_in(token)


def test_sessions_are_shared_by_gateways_and_end_with_a_new_password(stack):
    token = token_of(login())
    with spare_gateway(stack["logs"], "console-https-gateway", PUBLIC_BASE_URL="https://kindly.example.test") as spare:
        assert logged_in(token, spare)  # another worker knows the session
        assert cookie_attributes(login(base=spare))["secure"] is True
    new_password = f"new-console-password-{uuid.uuid4().hex[:8]}"
    watch_for_leaks(new_password)
    with spare_gateway(stack["logs"], "console-new-password-gateway", CONSOLE_PASSWORD=new_password) as spare:
        assert not logged_in(token, spare)
        assert login(PASSWORD, spare).status_code == 401
        new_token = token_of(login(new_password, spare))
        assert logged_in(new_token, spare) and not logged_in(new_token)
    assert logged_in(token)


# ---------------------------------------------------------------------------------------------- throttling

_documentation_addresses = (f"203.0.113.{n}" for n in itertools.count(1))


@pytest.fixture
def forwarded_addresses():
    """Two client addresses of the test's own. uvicorn takes the client's address from X-Forwarded-For when
    the request comes from a proxy on loopback, as the tests' requests do."""
    addresses = [next(_documentation_addresses), next(_documentation_addresses)]
    yield addresses
    with session_scope() as session:
        session.execute(delete(ConsoleLoginFailure).where(ConsoleLoginFailure.ip.in_(addresses)))


def test_wrong_passwords_lock_the_address_out(stack, forwarded_addresses):
    attacker, colleague = forwarded_addresses
    guesses = [f"guess-{uuid.uuid4().hex[:10]}" for _ in range(FAILURES_PER_IP + 1)]
    watch_for_leaks(*guesses)
    for guess in guesses[:FAILURES_PER_IP]:
        wrong = login(guess, **{"X-Forwarded-For": attacker})
        assert wrong.status_code == 401 and "Wrong password" in wrong.text
    locked = login(guesses[-1], **{"X-Forwarded-For": attacker})
    assert locked.status_code == 429 and "Too many failed logins" in locked.text
    assert 0 < int(locked.headers["Retry-After"]) <= FAILURE_WINDOW.total_seconds()
    assert login(**{"X-Forwarded-For": attacker}).status_code == 429  # the right password too, while locked
    assert COOKIE not in login(**{"X-Forwarded-For": attacker}).cookies
    assert token_of(login(**{"X-Forwarded-For": colleague}))  # another address is not locked
    with session_scope() as session:
        audited = list(session.scalars(select(AuditLog).where(AuditLog.entity_id.in_(forwarded_addresses))))
    actions = [(row.action, row.entity_id) for row in audited]
    assert actions.count(("console_login_failed", attacker)) == FAILURES_PER_IP
    assert ("console_login", colleague) in actions and ("console_login", attacker) not in actions
    assert find_leaks(guesses, stack["logs"], [settings.database_url]) == []


def test_simultaneous_guesses_get_no_more_password_checks_than_the_limit(stack, forwarded_addresses):
    attacker = forwarded_addresses[0]
    with ThreadPoolExecutor(10) as pool:
        codes = list(pool.map(lambda n: login(f"guess {n}", **{"X-Forwarded-For": attacker}).status_code, range(20)))
    assert sorted(codes) == [401] * FAILURES_PER_IP + [429] * (20 - FAILURES_PER_IP)


def test_a_successful_login_clears_the_addresses_failures(stack, forwarded_addresses):
    address = forwarded_addresses[0]
    for _ in range(FAILURES_PER_IP - 1):
        assert login("not-it", **{"X-Forwarded-For": address}).status_code == 401
    assert token_of(login(**{"X-Forwarded-For": address}))
    for _ in range(FAILURES_PER_IP - 1):
        assert login("not-it", **{"X-Forwarded-For": address}).status_code == 401
    assert token_of(login(**{"X-Forwarded-For": address}))


def assert_the_throttle_counts(session, now):
    """Per address and overall, within the window ending `now`."""
    minute = timedelta(minutes=1)
    for n in range(FAILURES_PER_IP - 1):
        record_login_failure(session, "198.51.100.1", now - (14 - n) * minute)
    record_login_failure(session, "198.51.100.1", now - 20 * minute)  # outside the window
    assert login_retry_after(session, "198.51.100.1", now) is None
    record_login_failure(session, "198.51.100.1", now)
    # Locked until the oldest of the five in the window, 14 minutes ago, leaves it.
    assert login_retry_after(session, "198.51.100.1", now) == 60
    assert login_retry_after(session, "198.51.100.1", now + minute + timedelta(seconds=1)) is None
    assert login_retry_after(session, "198.51.100.2", now) is None
    clear_login_failures(session, "198.51.100.1")
    assert login_retry_after(session, "198.51.100.1", now) is None

    for n in range(FAILURES_OVERALL - 1):
        record_login_failure(session, f"198.51.0.{n}", now - 10 * minute)
    assert login_retry_after(session, "198.51.100.3", now) is None
    record_login_failure(session, "198.51.99.99", now - 10 * minute)
    assert login_retry_after(session, "198.51.100.3", now) == 5 * 60  # everyone, a new address too


def test_the_throttle_counts_per_address_and_overall_within_the_window(database):
    now = utcnow() - timedelta(days=30)  # the window ending then holds no failure of the other tests
    try:
        with session_scope() as session:
            assert_the_throttle_counts(session, now)
    finally:
        with session_scope() as session:
            session.execute(delete(ConsoleLoginFailure).where(ConsoleLoginFailure.at <= now))


def test_the_throttle_on_postgresql_with_logins_one_at_a_time(postgres_url):
    upgrade(postgres_url)
    engine = make_engine(postgres_url)
    try:
        with Session(engine) as first, Session(engine) as second:
            serialise_logins(first)
            assert second.scalar(select(func.pg_try_advisory_xact_lock(LOGIN_LOCK))) is False
            assert_the_throttle_counts(first, utcnow())
            first.commit()
            assert second.scalar(select(func.pg_try_advisory_xact_lock(LOGIN_LOCK))) is True
    finally:
        engine.dispose()


# ---------------------------------------------------------------------------------------------------- CSRF

def agent_texts(phone: str, text: str) -> list:
    messages = httpx.get(f"{SIMULATOR_URL}/sim/messages", timeout=30).json()
    return [m for m in messages if m["to"] == phone and m["body"] == text]


def sms_handoff(api) -> tuple[dict, dict]:
    """A customer who asked for a person by SMS, and the waiting handoff."""
    account = new_account(api)
    sms(account["phone"], "hi")
    assert replies(sms(account["phone"], "can i speak to a human please"))
    [handoff] = api.get("/api/handoffs", params={"account_id": account["id"]}).json()
    assert handoff["status"] == "waiting"
    return account, handoff


def test_console_forms_need_the_sessions_csrf_token(api):
    account, handoff = sms_handoff(api)
    page = f"/console/handoffs/{handoff['id']}"
    mine, theirs = agent(token_of(login())), agent(token_of(login()))
    with mine, theirs:
        my_csrf, their_csrf = csrf_on(mine.get(page)), csrf_on(theirs.get(page))
        assert my_csrf != their_csrf
        text = f"Hello, this is Dana {uuid.uuid4().hex[:6]}"
        refused = [
            mine.post(f"{page}/reply", data={"text": text}),
            mine.post(f"{page}/reply", data={"text": text, "csrf": their_csrf}),
            mine.post(f"{page}/reply", data={"text": text, "csrf": ""}),
            mine.post(f"{page}/reply", data={"text": text, "csrf": my_csrf}, headers={"Origin": "https://evil.example"}),
            mine.post(f"{page}/resolve", data={"disposition": "callback_requested"}),
            mine.post(f"{page}/resolve", data={"disposition": "callback_requested", "csrf": their_csrf}),
            mine.post(f"{page}/resolve", data={"disposition": "callback_requested", "csrf": my_csrf},
                      headers={"Origin": "null"}),
        ]
        assert [r.status_code for r in refused] == [403] * len(refused), [r.text for r in refused]
        unchanged = api.get(f"/api/handoffs/{handoff['id']}").json()
        assert unchanged["status"] == "waiting" and not [m for m in unchanged["messages"] if m["role"] == "agent"]
        assert agent_texts(account["phone"], text) == []

        sent = mine.post(f"{page}/reply", data={"text": text, "csrf": my_csrf}, headers={"Origin": GATEWAY_URL})
        assert sent.status_code == 303, sent.text
        claimed = api.get(f"/api/handoffs/{handoff['id']}").json()
        assert claimed["status"] == "claimed" and [m["text"] for m in claimed["messages"] if m["role"] == "agent"] == [text]
        assert len(agent_texts(account["phone"], text)) == 1
        resolved = mine.post(f"{page}/resolve", data={"disposition": "callback_requested", "note": "calls back", "csrf": my_csrf})
        assert resolved.status_code == 303, resolved.text
    closed = api.get(f"/api/handoffs/{handoff['id']}").json()
    assert closed["status"] == "resolved" and closed["disposition"] == "callback_requested"


def test_login_from_another_site_is_refused(stack):
    assert login(Origin="https://evil.example").status_code == 403
    assert token_of(login(Origin=GATEWAY_URL))


# ------------------------------------------------------------------------------------------- in a browser

def test_an_agent_logs_in_and_replies_in_a_real_browser(api):
    if not CHROMIUM.exists():
        pytest.skip(f"no {CHROMIUM} to drive (Debian's chromium package)")
    browsers = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    account, handoff = sms_handoff(api)
    text = f"Hi, this is Sam from the bank {uuid.uuid4().hex[:6]}"
    with browsers.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page()
            page.goto(f"{GATEWAY_URL}/console")  # not logged in: the login page
            page.fill("input[name=password]", PASSWORD)
            page.click("text=Log in")
            browsers.expect(page.locator("h1")).to_have_text("Handoffs waiting")
            [cookie] = page.context.cookies()
            assert (cookie["name"], cookie["httpOnly"], cookie["sameSite"], cookie["path"], cookie["secure"]) == \
                (COOKIE, True, "Strict", "/console", False)
            page.click(f"a[href='/console/handoffs/{handoff['id']}']")
            browsers.expect(page.locator("h1")).to_have_text(f"Handoff #{handoff['id']}")
            page.fill("textarea[name=text]", text)
            page.click("text=Send")  # the browser sends its Origin: the gateway's own
            browsers.expect(page.locator(".agent")).to_contain_text(text)
            page.click("text=back to the queue")
            page.click("text=Log out")
            browsers.expect(page.locator("input[name=password]")).to_be_visible()
            assert page.context.cookies() == []
        finally:
            browser.close()
    claimed = api.get(f"/api/handoffs/{handoff['id']}").json()
    assert claimed["status"] == "claimed" and [m["text"] for m in claimed["messages"] if m["role"] == "agent"] == [text]
    assert len(agent_texts(account["phone"], text)) == 1
