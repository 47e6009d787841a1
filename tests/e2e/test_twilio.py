"""The Twilio channels end to end: signed webhooks into the gateway, TwiML back, the real engine and action
server behind it, and the bundled simulator standing in for Twilio's REST API."""
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import httpx
import pytest

from kindly.texts import say
from tests.conftest import GATEWAY_URL, SIMULATOR_URL, ZH_ACCOUNT
from tests.e2e.helpers import DEBT_WORDS, new_account
from tests.e2e.twilio_peer import Call, daytime_phone, post_signed, replies, sms, spoken, zone_where_hour_is

LANG = {"en": {}, "zh": ZH_ACCOUNT}


def daytime_account(api, language="en", **overrides):
    phone, zone = daytime_phone()
    return new_account(api, **{**LANG[language], "phone": phone, "timezone": zone, **overrides})


def reference(promise: dict, language: str) -> str:
    """How the confirmation SMS names the promise."""
    return f"Reference {promise['id']}" if language == "en" else f"编号{promise['id']}"


def sim(method: str, path: str, **kwargs) -> httpx.Response:
    response = httpx.request(method, f"{SIMULATOR_URL}{path}", timeout=120, **kwargs)
    assert response.status_code < 300, response.text
    return response


SCRIPTS = {
    "en": ["yes this is alex speaking", "march fifth 1985", "my hours got cut at work so money's been tight",
           "can we do it in 12 monthly payments", "next friday", "yes"],
    "zh": ["嗯是我", "1988年2月3日", "工资晚发了，这个月手头比较紧", "分12期吧", "下周五", "可以的"],
}


@pytest.mark.parametrize("language", ["en", "zh"])
def test_outbound_call_ends_in_an_installment_promise(api, language):
    account = daytime_account(api, language)
    contact = api.post("/api/contacts", json={"account_id": account["id"], "channel": "voice"})
    assert contact.status_code == 201, contact.text
    call_sid = contact.json()["external_ref"]
    sim("POST", f"/sim/calls/{call_sid}/answer", json={"as": "person"})
    for line in SCRIPTS[language]:
        sim("POST", f"/sim/calls/{call_sid}/input", json={"speech": line})
    [promise] = api.get("/api/promises", params={"account_id": account["id"]}).json()
    assert promise["plan_type"] == "installment" and promise["installments"] == 12
    balance = Decimal(account["balance"])
    parts = [Decimal(p["amount"]) for p in promise["schedule"]]
    assert sum(parts) == balance and parts[0] == (balance / 12).quantize(Decimal("0.01"))
    [conversation] = api.get("/api/conversations", params={"account_id": account["id"]}).json()
    assert conversation["channel"] == "voice" and conversation["direction"] == "outbound"
    assert conversation["verified"] and conversation["disposition"] == "promise_to_pay"
    texts = [m for m in sim("GET", "/sim/messages").json() if m["to"] == account["phone"]]
    assert texts and reference(promise, language) in texts[-1]["body"]


@pytest.mark.parametrize("language, lines", [
    ("en", ["hi", "yeah it's me", "1985-03-05", "my mom got really sick and i had to fly home",
            "could i push the payment back a few weeks? i can pay the minimum in 4 weeks", "yes that's right"]),
    ("zh", ["你好", "对我是", "八八年二月三号", "家里老人住院了，一直在照顾", "能不能延期，四周后先还最低还款", "对的"]),
])
def test_inbound_sms_conversation_ends_in_a_deferral(api, language, lines):
    account = new_account(api, **LANG[language])
    said = [replies(sms(account["phone"], line)) for line in lines]
    assert all(said), said
    [promise] = api.get("/api/promises", params={"account_id": account["id"]}).json()
    assert promise["plan_type"] == "deferral" and Decimal(promise["amount"]) == Decimal(account["minimum_due"])
    assert reference(promise, language) in said[-1][-1]
    [conversation] = api.get("/api/conversations", params={"account_id": account["id"]}).json()
    assert conversation["channel"] == "sms" and conversation["direction"] == "inbound"


@pytest.mark.parametrize("language, ask", [("en", "i want to talk to a real person"), ("zh", "给我转人工客服")])
def test_voice_handoff_dials_the_agent_with_a_whisper(api, language, ask):
    account = new_account(api, **LANG[language])
    call = Call(account["phone"])
    call.answer()
    call.say(ask)
    dial = call.root.find("Dial")
    assert dial is not None and dial.find("Number").text == "+15005550100"
    whisper_url = dial.find("Number").get("url")
    whisper = post_signed(whisper_url, call.params())
    assert whisper.status_code == 200 and account["name"] in whisper.text and "requested_human" in whisper.text
    [handoff] = api.get("/api/handoffs", params={"account_id": account["id"]}).json()
    assert handoff["status"] == "waiting" and handoff["channel"] == "voice"
    no_answer = post_signed(dial.get("action"), call.params(DialCallStatus="no-answer"))
    assert "<Hangup" in no_answer.text
    assert api.get("/api/handoffs", params={"account_id": account["id"]}).json()[0]["status"] == "waiting"


@pytest.mark.parametrize("language, ask", [("en", "can i speak to a human please"), ("zh", "我要找人工")])
def test_sms_handoff_round_trip_with_an_agent_reply(api, language, ask):
    account = new_account(api, **LANG[language])
    sms(account["phone"], "hi")
    assert replies(sms(account["phone"], ask))
    [handoff] = api.get("/api/handoffs", params={"account_id": account["id"]}).json()
    notices = [m for m in sim("GET", "/sim/messages").json() if m["to"] == "+15005550100"]
    assert any(f"#{handoff['id']}" in m["body"] for m in notices)
    assert replies(sms(account["phone"], "hello? anyone there")) == []  # the bot is paused
    sent = api.post(f"/api/handoffs/{handoff['id']}/messages", json={"text": "Hi, this is Dana from the bank."})
    assert sent.status_code == 201 and sent.json()["status"] == "claimed"
    assert [m["text"] for m in sent.json()["messages"]] == ["hello? anyone there", "Hi, this is Dana from the bank."]
    assert any(m["to"] == account["phone"] and "Dana" in m["body"] for m in sim("GET", "/sim/messages").json())
    resolved = api.post(f"/api/handoffs/{handoff['id']}/resolve", json={"disposition": "callback_requested", "note": "calls Friday"})
    assert resolved.json()["status"] == "resolved"
    assert replies(sms(account["phone"], "hi again"))  # the bot is back


def test_stop_help_and_start(api):
    account = new_account(api)
    assert "STOP" in replies(sms(account["phone"], "HELP"))[0]
    assert "won't receive" in replies(sms(account["phone"], "stop"))[0]
    assert replies(sms(account["phone"], "STOP")) == []  # one confirmation only
    assert replies(sms(account["phone"], "hello?")) == []
    assert api.get(f"/api/accounts/{account['id']}").json()["opt_outs"][0]["channel"] == "sms"
    refused = api.post("/api/contacts", json={"account_id": account["id"], "channel": "sms"})
    assert refused.status_code == 409 and refused.json()["detail"]["rule"] in ("opted_out", "calling_window")
    assert "subscribed" in replies(sms(account["phone"], "START"))[0]
    assert api.get(f"/api/accounts/{account['id']}").json()["opt_outs"] == []
    zh = new_account(api, **ZH_ACCOUNT)
    assert "不再收到" in replies(sms(zh["phone"], "退订"))[0]


def test_forged_or_missing_signature_is_403(stack):
    params = {"CallSid": "CA" + uuid.uuid4().hex, "From": "+14155550123", "To": "+15005550006", "Direction": "inbound"}
    assert httpx.post(f"{GATEWAY_URL}/twilio/voice", data=params).status_code == 403
    assert post_signed(f"{GATEWAY_URL}/twilio/voice", params, token="not-the-token").status_code == 403
    assert post_signed(f"{GATEWAY_URL}/twilio/sms?x=1", {"Body": "hi"}, token="wrong").status_code == 403
    signed_elsewhere = post_signed(f"{GATEWAY_URL}/twilio/status", {"CallSid": "CA1"})
    forged = httpx.post(f"{GATEWAY_URL}/twilio/status", data={"CallSid": "CA2"},
                        headers={"X-Twilio-Signature": signed_elsewhere.request.headers["X-Twilio-Signature"]})
    assert forged.status_code == 403


def test_a_retried_webhook_adds_no_turn_and_no_promise(api):
    account = new_account(api)
    call = Call(account["phone"])
    call.answer()
    for line in ["yes", "march 5 1985", "i forgot", "i'll pay it all off tomorrow"]:
        call.say(line)
    confirm_url, params = call.gather_url(), call.params(SpeechResult="yes that's correct", Confidence="0.9")
    first = post_signed(confirm_url, params)
    retry = post_signed(confirm_url, params)
    assert first.text == retry.text and "<Hangup" in first.text
    assert len(api.get("/api/promises", params={"account_id": account["id"]}).json()) == 1
    [conversation] = api.get("/api/conversations", params={"account_id": account["id"]}).json()
    assert [t["text"] for t in conversation["transcript"] if t["role"] == "user"].count("yes that's correct") == 1
    sid = "SM" + uuid.uuid4().hex
    assert replies(sms(account["phone"], "hello", sid)) == replies(sms(account["phone"], "hello", sid))


def test_voicemail_is_limited_content(api):
    account = daytime_account(api)
    contact = api.post("/api/contacts", json={"account_id": account["id"], "channel": "voice"}).json()
    call = sim("POST", f"/sim/calls/{contact['external_ref']}/answer", json={"as": "machine"}).json()
    [conversation] = api.get("/api/conversations", params={"account_id": account["id"]}).json()
    assert conversation["disposition"] == "voicemail"
    message = " ".join(t["text"] for t in conversation["transcript"]).lower()
    assert "call us back" in message and "+18005550199" in message
    for word in DEBT_WORDS + [account["balance"]]:
        assert word.lower() not in message
    assert call["status"] == "completed"


def test_silence_is_reprompted_twice_then_the_call_closes(api):
    account = new_account(api)
    call = Call(account["phone"])
    call.answer()
    assert "didn't hear" in spoken(call.say())
    assert "didn't hear" in spoken(call.say())
    last = call.say()
    assert last.find("Hangup") is not None and "can't hear you" in spoken(last)
    [conversation] = api.get("/api/conversations", params={"account_id": account["id"]}).json()
    assert conversation["ended_at"] and conversation["disposition"] == "no_commitment"
    # "We'll try again another time": the next day's call is written down for the follow-through worker.
    [again] = api.get("/api/follow-ups", params={"account_id": account["id"], "kind": "callback"}).json()
    tomorrow = datetime.now(ZoneInfo(account["timezone"])).date() + timedelta(days=1)
    assert (again["status"], again["due_on"], again["conversation_id"]) == ("open", tomorrow.isoformat(), conversation["id"])


def test_keypad_date_of_birth_verifies(api):
    account = new_account(api)
    call = Call(account["phone"])
    call.answer()
    call.say("yes")
    assert "debt" in spoken(call.say(digits="19850305"))
    transcript = api.get("/api/conversations", params={"account_id": account["id"]}).json()[0]["transcript"]
    assert "19850305" not in str(transcript)


def test_huge_and_binary_messages_get_no_500(api):
    account = new_account(api)
    assert replies(sms(account["phone"], "a" * 10_000))
    zh = new_account(api, **ZH_ACCOUNT)  # a fresh conversation: a second miss in a row would go to a person
    assert replies(sms(zh["phone"], "你好"))
    said = replies(sms(zh["phone"], "\x00\xff\ufffe\x07" * 300))  # sms() checks the 200 and the TwiML
    assert len(said) == 1 and said[0].startswith(say("not_understood", "zh", channel="sms")), said
    call = Call(account["phone"])
    call.answer()
    assert call.say("b" * 10_000).tag == "Response"


def test_outbound_contact_outside_the_calling_window_is_refused(api):
    account = new_account(api, timezone=zone_where_hour_is(1, 6))
    response = api.post("/api/contacts", json={"account_id": account["id"], "channel": "voice"})
    assert response.status_code == 409 and response.json()["detail"]["rule"] == "calling_window"


def test_unknown_caller_is_told_nothing(stack):
    call = Call("+14155550999")
    root = call.answer()
    assert root.find("Hangup") is not None and "couldn't find" in spoken(root)


def test_dial_status_for_an_unknown_handoff_just_hangs_up(stack):
    url = f"{GATEWAY_URL}/twilio/voice/dial-status?conversation=nope&handoff=999999"
    response = post_signed(url, {"CallSid": "CA" + uuid.uuid4().hex, "DialCallStatus": "no-answer"})
    assert response.status_code == 200 and "<Hangup" in response.text
