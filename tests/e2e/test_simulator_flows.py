"""The simulator as a person uses it: an inbound call and a text thread against the running gateway."""
import base64

import httpx

from tests.conftest import SIMULATOR_URL
from tests.e2e.helpers import new_account


def test_twilio_rest_needs_the_account_credentials(stack):
    wrong = "Basic " + base64.b64encode(b"AC" + b"1" * 32 + b":wrong").decode()
    response = httpx.post(f"{SIMULATOR_URL}/2010-04-01/Accounts/{'AC' + '1' * 32}/Messages.json",
                          data={"To": "+14155550100", "From": "+15005550006", "Body": "hi"}, headers={"Authorization": wrong})
    assert response.status_code == 401


def test_inbound_call_through_the_simulator_reaches_an_agent_with_a_whisper(api):
    account = new_account(api)
    call = httpx.post(f"{SIMULATOR_URL}/sim/calls", json={"from": account["phone"]}, timeout=60).json()
    assert call["gather"] and "Alex Morgan" in " ".join(e["text"] for e in call["events"] if e["verb"] == "Say")
    call = httpx.post(f"{SIMULATOR_URL}/sim/calls/{call['sid']}/input", json={"speech": "put me through to an actual person"}, timeout=60).json()
    verbs = [e["verb"] for e in call["events"]]
    assert "Dial" in verbs and "Whisper" in verbs and call["status"] == "completed"
    whisper = next(e["text"] for e in call["events"] if e["verb"] == "Whisper")
    assert "Alex Morgan" in whisper and "requested_human" in whisper and "NOT verified" in whisper


def test_text_thread_through_the_simulator(api):
    account = new_account(api)
    replies = httpx.post(f"{SIMULATOR_URL}/sim/sms", json={"from": account["phone"], "body": "hello"}, timeout=60).json()
    assert "Alex Morgan" in replies[0]["body"]
    thread = [m for m in httpx.get(f"{SIMULATOR_URL}/sim/messages").json() if account["phone"] in (m["to"], m["from"])]
    assert [m["direction"] for m in thread] == ["inbound", "reply"]
