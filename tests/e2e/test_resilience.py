"""Webhooks under retries and failures, end to end: copies of one webhook make one turn, a customer's text is
never a Rasa command, and when the engine, the action server or the database fails the customer still gets a
polite answer in TwiML, while an opt-out is never lost."""
import socket
import sqlite3
import subprocess
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from kindly.db import session_scope
from kindly.models import WebhookReceipt
from kindly.texts import say
from scripts import services
from tests.conftest import ACTION_PORT, ENGINE_PORT, GATEWAY_PORT, GATEWAY_URL, ZH_ACCOUNT
from tests.e2e.helpers import new_account
from tests.e2e.twilio_peer import AUTH_TOKEN, OUR_NUMBER, Call, post_signed, replies, sms, spoken, twiml
from twilio.request_validator import RequestValidator

AGENT_LINE = "+15005550100"
CALLBACK = "+18005550199"
# Ports of this module's own processes, next to the shared stack's.
DEAD_ENGINE_PORT, DEAD_ACTION_PORT, SPARE_ENGINE_PORT, HUNG_ENGINE_PORT = ENGINE_PORT + 4, ACTION_PORT + 4, ENGINE_PORT + 1, ENGINE_PORT + 5
BROKEN_GATEWAY_PORT, READ_ONLY_GATEWAY_PORT = GATEWAY_PORT + 10, GATEWAY_PORT + 11
LANG = {"en": {}, "zh": ZH_ACCOUNT}


def sms_params(phone: str, body: str, sid: str | None = "new") -> dict:
    params = {"AccountSid": "AC" + "1" * 32, "Body": body, "From": phone, "NumMedia": "0", "To": OUR_NUMBER}
    if sid:
        params["MessageSid"] = "SM" + uuid.uuid4().hex if sid == "new" else sid
    return params


def user_turns(api, account: dict) -> list[str]:
    return [t["text"] for c in api.get("/api/conversations", params={"account_id": account["id"]}).json()
            for t in c["transcript"] if t["role"] == "user"]


def receipt(key: str):
    with session_scope() as session:
        return session.get(WebhookReceipt, key)


# ---------------------------------------------------------------- retries


def test_five_simultaneous_copies_of_one_sms_make_one_turn(api):
    account = new_account(api)
    params = sms_params(account["phone"], "hi there")
    start = threading.Barrier(5)

    def post_copy(_):
        start.wait()
        return post_signed(f"{GATEWAY_URL}/twilio/sms", params)

    with ThreadPoolExecutor(5) as pool:
        answers = [twiml(response) for response in pool.map(post_copy, range(5))]
    assert user_turns(api, account) == ["hi there"]
    said = [replies(root) for root in answers]
    first = next(r for r in said if r)
    assert all(r in (first, []) for r in said), said
    assert receipt(f"sms:{params['MessageSid']}").state == "done"


def test_a_replay_with_its_fields_re_split_adds_no_turn(api):
    account = new_account(api)
    url = f"{GATEWAY_URL}/twilio/sms"
    params = sms_params(account["phone"], "hello")
    first = post_signed(url, params)
    # Twilio signs the URL and each name with its value, joined in name order: "AccountSid" + its value + "Body"
    # read as one name, with "hello" as its value, signs the same. The replay also sends its fields reversed.
    signature = first.request.headers["X-Twilio-Signature"]
    re_split = {f"AccountSid{params['AccountSid']}Body": "hello", **{k: params[k] for k in ("From", "MessageSid", "NumMedia", "To")}}
    assert RequestValidator(AUTH_TOKEN).validate(url, re_split, signature)
    replay = httpx.post(url, data=dict(reversed(list(re_split.items()))), headers={"X-Twilio-Signature": signature})
    assert replay.status_code == 200 and replay.text == first.text
    assert user_turns(api, account) == ["hello"]


def test_requests_without_a_message_sid_are_refused_and_never_share_an_answer(api):
    english, chinese = new_account(api), new_account(api, **ZH_ACCOUNT)
    for account, body in ((english, "hi"), (chinese, "你好")):
        response = post_signed(f"{GATEWAY_URL}/twilio/sms", sms_params(account["phone"], body, sid=None))
        assert response.status_code == 400 and "MessageSid" in response.json()["detail"]
        assert user_turns(api, account) == []
    assert receipt("sms:") is None


# ---------------------------------------------------------------- Rasa commands


@pytest.mark.parametrize("command", ["/restart", "/greet", '/greet{"name": "x"}', " //restart"])
def test_a_customer_texting_a_rasa_command_gets_an_answer_and_the_conversation_goes_on(api, command):
    account = new_account(api)
    assert replies(sms(account["phone"], "hi"))
    assert replies(sms(account["phone"], command))
    asked = replies(sms(account["phone"], "yes this is alex speaking"))
    assert "date of birth" in " ".join(asked).lower(), asked
    [conversation] = api.get("/api/conversations", params={"account_id": account["id"]}).json()
    assert conversation["ended_at"] is None and user_turns(api, account)[1] == command.strip()


def test_session_start_from_a_customer_is_only_text(api):
    account = new_account(api)
    assert replies(sms(account["phone"], "hi"))
    said = replies(sms(account["phone"], "/session_start"))
    assert said and said != [say("failure_apology", "en", "sms")]  # as a command, Rasa answers with nothing


# ---------------------------------------------------------------- engine or action server down


def _spare_gateway(port: int, logs: Path, name: str, **env) -> subprocess.Popen:
    env = services.base_env(PUBLIC_BASE_URL=f"http://127.0.0.1:{port}", **env)
    gateway = services.start_gateway(port, env, logs / f"{name}.log")
    services.wait_until_up(f"http://127.0.0.1:{port}/health", gateway)
    return gateway


@pytest.fixture(scope="module", params=["engine_down", "engine_hangs", "action_server_down"])
def broken_gateway(request, stack):
    """A gateway whose engine is not there, takes connections and never answers, or has no action server. The
    shared stack stays untouched; its database and Twilio simulator are shared."""
    logs, processes = stack["logs"], []
    hung = socket.create_server(("127.0.0.1", HUNG_ENGINE_PORT), backlog=64)  # never accepts: the kernel does
    try:
        if request.param == "engine_down":
            engine_url = f"http://127.0.0.1:{DEAD_ENGINE_PORT}"
        elif request.param == "engine_hangs":
            engine_url = f"http://127.0.0.1:{HUNG_ENGINE_PORT}"
        else:
            env = services.base_env()
            processes.append(services.start_engine(SPARE_ENGINE_PORT, DEAD_ACTION_PORT, env, logs / "engine-no-actions.log"))
            services.wait_until_up(f"http://127.0.0.1:{SPARE_ENGINE_PORT}/", processes[-1], timeout=300)
            engine_url = f"http://127.0.0.1:{SPARE_ENGINE_PORT}"
        processes.append(_spare_gateway(BROKEN_GATEWAY_PORT, logs, request.param, RASA_URL=engine_url))
        yield f"http://127.0.0.1:{BROKEN_GATEWAY_PORT}"
    finally:
        services.stop(*processes)
        hung.close()


@pytest.mark.parametrize("language", ["en", "zh"])
def test_sms_gets_an_apology_and_a_bot_failure_handoff(api, broken_gateway, language):
    account = new_account(api, **LANG[language])
    params = sms_params(account["phone"], "hello")
    said = replies(twiml(post_signed(f"{broken_gateway}/twilio/sms", params)))
    assert said == [say("failure_apology", language, "sms")] and CALLBACK in said[0]
    [handoff] = api.get("/api/handoffs", params={"account_id": account["id"]}).json()
    assert handoff["reason"] == "bot_failure" and handoff["channel"] == "sms" and handoff["status"] == "waiting"
    assert receipt(f"sms:{params['MessageSid']}") is None  # the failure is not the answer a retry gets


@pytest.mark.parametrize("language", ["en", "zh"])
def test_a_call_hears_an_apology_and_is_put_through_to_an_agent(api, broken_gateway, language):
    account = new_account(api, **LANG[language])
    call = Call(account["phone"])
    root = twiml(post_signed(f"{broken_gateway}/twilio/voice", call.params()))
    assert spoken(root) == say("failure_apology_transfer", language)
    dial = root.find("Dial")
    assert dial is not None and dial.find("Number").text == AGENT_LINE
    [handoff] = api.get("/api/handoffs", params={"account_id": account["id"]}).json()
    assert handoff["reason"] == "bot_failure" and handoff["channel"] == "voice"
    assert f"handoff={handoff['id']}" in dial.get("action") and f"handoff={handoff['id']}" in dial.find("Number").get("url")
    assert receipt(f"voice:{call.sid}:answer") is None


# ---------------------------------------------------------------- the database


@pytest.fixture
def database_file(database) -> str:
    return make_url(database).database


def test_a_locked_database_gets_a_polite_answer_and_the_retry_runs_the_turn(api, database_file):
    account = new_account(api)
    params = sms_params(account["phone"], "hi")
    call = Call(account["phone"])
    lock = sqlite3.connect(database_file, isolation_level=None)
    try:
        lock.execute("BEGIN EXCLUSIVE")
        said = replies(twiml(post_signed(f"{GATEWAY_URL}/twilio/sms", params)))
        answered = call.answer()
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert said == [say("failure_apology", "en", "sms")]
    assert spoken(answered) == say("failure_apology_transfer", "en") and answered.find("Dial/Number").text == AGENT_LINE
    assert api.get("/api/handoffs", params={"account_id": account["id"]}).json() == []  # nothing could be written
    retried = replies(sms(account["phone"], "hi", sid=params["MessageSid"]))
    assert retried and account["name"] in retried[0]
    assert user_turns(api, account) == ["hi"]


@pytest.fixture
def read_only_gateway(stack, database_file):
    gateway = _spare_gateway(READ_ONLY_GATEWAY_PORT, stack["logs"], "read-only",
                             DATABASE_URL=f"sqlite:///file:{database_file}?mode=ro&uri=true")
    yield f"http://127.0.0.1:{READ_ONLY_GATEWAY_PORT}"
    services.stop(gateway)


@pytest.mark.parametrize("language, stop", [("en", "STOP"), ("zh", "退订")])
def test_stop_on_a_read_only_database_is_retried_until_recorded(api, read_only_gateway, language, stop):
    account = new_account(api, **LANG[language])
    params = sms_params(account["phone"], stop)
    refused = post_signed(f"{read_only_gateway}/twilio/sms", params)
    assert refused.status_code == 503  # Twilio sends it again
    assert api.get(f"/api/accounts/{account['id']}").json()["opt_outs"] == []
    retried = replies(sms(account["phone"], stop, sid=params["MessageSid"]))  # the database takes writes again
    assert retried == [say("sms_opted_out", language)]
    assert [o["channel"] for o in api.get(f"/api/accounts/{account['id']}").json()["opt_outs"]] == ["sms"]
