"""The Twilio simulator on its own: twilio's REST client pointed at it, and a fake gateway that checks every
webhook's signature with twilio's RequestValidator and answers with fixed TwiML."""
import socket
import threading
import time
import warnings

import pytest
import uvicorn
from fastapi import FastAPI, Request, Response
from twilio.base.exceptions import TwilioRestException
from twilio.http import HttpClient
from twilio.http.response import Response as TwilioResponse
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

from simulator.app import create_app

with warnings.catch_warnings():  # this Starlette warns that its TestClient will move from httpx to httpx2
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

PUBLIC = "https://kindly.example.test"  # the gateway's public URL: signatures cover it, requests go to its port
SID, TOKEN = "AC" + "5" * 32, "simulator-test-token"
OURS, CUSTOMER, AGENT = "+15005550006", "+14155550123", "+15005550100"
SIM_BASE = "http://testserver"


# ---------------------------------------------------------------- the fake gateway

def voice(form, query) -> str:
    response = VoiceResponse()
    if form.get("AnsweredBy", "").startswith("machine"):
        response.say("Please call Harbor Bank back.", voice="Polly.Joanna", language="en-US")
        response.hangup()
    elif "handoff" in query:
        response.say("Connecting you.")
        dial = Dial(action="/twilio/voice/dial-status", timeout=25)
        dial.number(AGENT, url="/twilio/voice/whisper")
        response.append(dial)
    else:
        response.say("Hello, this is Harbor Bank.", voice="Polly.Joanna", language="en-US")
        gather = Gather(input="speech dtmf", action="/twilio/voice/turn?step=1", language="en-US", hints="yes, no",
                        action_on_empty_result=True)
        gather.say("Am I speaking with Alex?", voice="Polly.Joanna", language="en-US")
        response.append(gather)
    return str(response)


def turn(form, query) -> str:
    response = VoiceResponse()
    if query["step"] == "1":
        gather = Gather(input="dtmf", action="turn?step=2", num_digits=8)  # relative to this document's URL
        gather.say("Please key in your date of birth.")
        response.append(gather)
        response.say("We did not get that.")
        response.redirect("/twilio/voice/turn?step=1")
    else:
        response.say("Thank you. Connecting you to a colleague.")
        dial = Dial(action="/twilio/voice/dial-status", timeout=25)
        dial.number(AGENT, url="/twilio/voice/whisper")
        response.append(dial)
    return str(response)


def whisper(form, query) -> str:
    response = VoiceResponse()
    response.say("Kindly handoff. Alex Morgan, verified.")
    return str(response)


def dial_status(form, query) -> str:
    response = VoiceResponse()
    response.say("Goodbye." if form["DialCallStatus"] == "completed" else "A colleague will call you back.")
    response.hangup()
    return str(response)


def sms(form, query) -> str:
    response = MessagingResponse()
    response.message(f"Hi! You said: {form['Body']}")
    response.message("Reply STOP to opt out.")
    return str(response)


SCRIPT = {"/twilio/voice": voice, "/twilio/voice/turn": turn, "/twilio/voice/whisper": whisper,
          "/twilio/voice/dial-status": dial_status, "/twilio/sms": sms, "/twilio/status": lambda form, query: ""}


def fake_gateway(hits: list) -> FastAPI:
    app = FastAPI()

    @app.post("/{path:path}")
    async def webhook(request: Request) -> Response:
        form = dict((await request.form()).multi_items())
        query = request.url.query
        url = f"{PUBLIC}{request.url.path}" + (f"?{query}" if query else "")
        if not RequestValidator(TOKEN).validate(url, form, request.headers.get("X-Twilio-Signature", "")):
            return Response("bad signature", status_code=403)
        hits.append({"path": request.url.path, "query": dict(request.query_params), "form": form})
        handler = SCRIPT.get(request.url.path)
        if handler is None:
            return Response(status_code=404)
        return Response(handler(form, dict(request.query_params)), media_type="application/xml")

    return app


@pytest.fixture(scope="module")
def gateway():
    hits: list = []
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(fake_gateway(hits), ws="none", log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield {"url": f"http://127.0.0.1:{sock.getsockname()[1]}", "hits": hits}
    server.should_exit = True
    thread.join(10)


# ---------------------------------------------------------------- the simulator and twilio's client

@pytest.fixture
def sim(gateway, monkeypatch):
    gateway["hits"].clear()
    monkeypatch.setenv("SIMULATOR_GATEWAY_URL", gateway["url"])
    monkeypatch.setenv("PUBLIC_BASE_URL", PUBLIC)
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", SID)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    monkeypatch.setenv("TWILIO_PHONE_NUMBER", OURS)
    with TestClient(create_app()) as client:
        yield client


class ThroughTestClient(HttpClient):
    """twilio's transport replaced by the in-process TestClient. It refuses any host but the simulator's, so
    the tests also show that `client.api.base_url` redirected the request."""

    def __init__(self, test_client: TestClient):
        super().__init__(logger=None, is_async=False)
        self.test_client = test_client

    def request(self, method, uri, params=None, data=None, headers=None, auth=None, timeout=None, allow_redirects=False):
        assert uri.startswith(SIM_BASE + "/2010-04-01/"), uri
        response = self.test_client.request(method, uri, params=params, data=data, headers=headers, auth=auth)
        return TwilioResponse(response.status_code, response.text, response.headers)


def twilio_client(sim: TestClient, token: str = TOKEN, account_sid: str = SID) -> Client:
    client = Client(account_sid, token, http_client=ThroughTestClient(sim))
    client.api.base_url = SIM_BASE  # what the gateway does with TWILIO_API_BASE_URL
    return client


def hits(gateway, path: str) -> list[dict]:
    return [hit for hit in gateway["hits"] if hit["path"] == path]


def place_call(sim, url: str = f"{PUBLIC}/twilio/voice?account_id=7", **extra):
    return twilio_client(sim).calls.create(
        to=CUSTOMER, from_=OURS, url=url, status_callback=f"{PUBLIC}/twilio/status",
        status_callback_event=["initiated", "ringing", "answered", "completed"], **extra,
    )


# ---------------------------------------------------------------- calls

def test_an_outbound_call_from_answer_to_transfer_and_hangup(sim, gateway):
    call = place_call(sim, machine_detection="DetectMessageEnd")
    assert call.sid.startswith("CA") and len(call.sid) == 34 and call.status == "queued" and call.to == CUSTOMER
    assert sim.get(f"/sim/calls/{call.sid}").json()["status"] == "ringing"
    assert not hits(gateway, "/twilio/voice")

    state = sim.post(f"/sim/calls/{call.sid}/answer", json={"as": "person"}).json()
    answered = hits(gateway, "/twilio/voice")[0]
    assert answered["query"] == {"account_id": "7"}
    assert {k: answered["form"][k] for k in ("CallSid", "AccountSid", "From", "To", "Direction", "CallStatus", "AnsweredBy")} == {
        "CallSid": call.sid, "AccountSid": SID, "From": OURS, "To": CUSTOMER, "Direction": "outbound-api",
        "CallStatus": "in-progress", "AnsweredBy": "human"}
    assert hits(gateway, "/twilio/status")[0]["form"]["CallStatus"] == "in-progress"  # the "answered" event
    assert state["status"] == "in-progress"
    assert [(e["text"], e["voice"]) for e in state["events"] if e["verb"] == "Say"] == [
        ("Hello, this is Harbor Bank.", "Polly.Joanna"), ("Am I speaking with Alex?", "Polly.Joanna")]
    assert state["gather"]["action"] == f"{PUBLIC}/twilio/voice/turn?step=1" and state["gather"]["hints"] == "yes, no"

    state = sim.post(f"/sim/calls/{call.sid}/input", json={"speech": "yes, this is Alex"}).json()
    assert hits(gateway, "/twilio/voice/turn")[0]["form"]["SpeechResult"] == "yes, this is Alex"
    assert state["gather"]["action"] == f"{PUBLIC}/twilio/voice/turn?step=2" and state["gather"]["input"] == "dtmf"

    # Silence, and this Gather has no actionOnEmptyResult: Twilio goes on with the verbs after it.
    state = sim.post(f"/sim/calls/{call.sid}/input", json={}).json()
    assert [h["query"]["step"] for h in hits(gateway, "/twilio/voice/turn")] == ["1", "1"]
    assert "We did not get that." in [e["text"] for e in state["events"] if e["verb"] == "Say"]
    assert state["gather"]["action"] == f"{PUBLIC}/twilio/voice/turn?step=2"

    state = sim.post(f"/sim/calls/{call.sid}/input", json={"digits": "19850305#"}).json()
    step2 = hits(gateway, "/twilio/voice/turn")[-1]
    assert step2["query"] == {"step": "2"} and step2["form"]["Digits"] == "19850305" and "SpeechResult" not in step2["form"]
    whispered = hits(gateway, "/twilio/voice/whisper")[0]["form"]
    assert whispered["To"] == AGENT and whispered["ParentCallSid"] == call.sid and whispered["Direction"] == "outbound-dial"
    assert hits(gateway, "/twilio/voice/dial-status")[0]["form"]["DialCallStatus"] == "completed"
    assert state["status"] == "completed" and state["transferred_to"] == AGENT and state["gather"] is None
    assert next(e["text"] for e in state["events"] if e["verb"] == "Whisper") == "Kindly handoff. Alex Morgan, verified."
    assert [e["verb"] for e in state["events"]][-3:] == ["Say", "Hangup", "status"]

    final = hits(gateway, "/twilio/status")[-1]["form"]
    assert final["CallSid"] == call.sid and final["CallStatus"] == "completed" and final["CallDuration"].isdigit()
    assert twilio_client(sim).calls(call.sid).fetch().status == "completed"


def test_the_agent_does_not_answer(sim, gateway):
    call = place_call(sim, url=f"{PUBLIC}/twilio/voice?handoff=1")
    state = sim.post(f"/sim/calls/{call.sid}/answer", json={"as": "person", "agent_answers": False}).json()
    assert hits(gateway, "/twilio/voice/dial-status")[0]["form"]["DialCallStatus"] == "no-answer"
    assert not hits(gateway, "/twilio/voice/whisper") and state["transferred_to"] is None
    assert "A colleague will call you back." in [e["text"] for e in state["events"] if e["verb"] == "Say"]
    assert state["status"] == "completed"


@pytest.mark.parametrize("outcome", ["no-answer", "busy"])
def test_a_call_nobody_picks_up(sim, gateway, outcome):
    call = place_call(sim)
    state = sim.post(f"/sim/calls/{call.sid}/reject", json={"status": outcome}).json()
    assert state["status"] == outcome and not hits(gateway, "/twilio/voice")
    assert [h["form"]["CallStatus"] for h in hits(gateway, "/twilio/status")] == [outcome]


def test_voicemail_picks_up(sim, gateway):
    call = place_call(sim, machine_detection="DetectMessageEnd")
    state = sim.post(f"/sim/calls/{call.sid}/answer", json={"as": "machine"}).json()
    assert hits(gateway, "/twilio/voice")[0]["form"]["AnsweredBy"] == "machine_end_beep"
    assert state["status"] == "completed" and state["events"][-3]["text"] == "Please call Harbor Bank back."


def test_an_inbound_call_and_the_person_hangs_up(sim, gateway):
    state = sim.post("/sim/calls", json={"from": CUSTOMER}).json()
    form = hits(gateway, "/twilio/voice")[0]["form"]
    assert (form["Direction"], form["From"], form["To"], form["CallStatus"]) == ("inbound", CUSTOMER, OURS, "ringing")
    assert state["status"] == "in-progress" and state["gather"]
    state = sim.post(f"/sim/calls/{state['sid']}/hangup").json()
    assert state["status"] == "completed"
    assert hits(gateway, "/twilio/status")[-1]["form"]["CallStatus"] == "completed"
    assert not hits(gateway, "/twilio/voice/turn")  # hanging up does not answer the Gather


def test_the_gateway_ends_or_redirects_a_call_through_rest(sim, gateway):
    call = place_call(sim)
    sim.post(f"/sim/calls/{call.sid}/answer", json={"as": "person"})
    updated = twilio_client(sim).calls(call.sid).update(twiml="<Response><Say>Moving you on.</Say><Pause/></Response>")
    assert updated.status == "completed"
    assert sim.get(f"/sim/calls/{call.sid}").json()["events"][-4]["text"] == "Moving you on."

    call = place_call(sim)
    sim.post(f"/sim/calls/{call.sid}/answer", json={"as": "person"})
    assert twilio_client(sim).calls(call.sid).update(status="completed").status == "completed"
    assert {"CallSid": call.sid, "CallStatus": "completed"}.items() <= hits(gateway, "/twilio/status")[-1]["form"].items()


# ---------------------------------------------------------------- texts and auth

def test_an_sms_round_trip(sim, gateway):
    replies = sim.post("/sim/sms", json={"from": CUSTOMER, "body": "hello"}).json()
    assert [r["body"] for r in replies] == ["Hi! You said: hello", "Reply STOP to opt out."]
    form = hits(gateway, "/twilio/sms")[0]["form"]
    assert (form["From"], form["To"], form["Body"], form["NumMedia"], form["AccountSid"]) == (CUSTOMER, OURS, "hello", "0", SID)
    assert form["MessageSid"].startswith("SM")

    sent = twilio_client(sim).messages.create(to=CUSTOMER, from_=OURS, body="Your plan is confirmed.",
                                              status_callback=f"{PUBLIC}/twilio/status")
    assert sent.sid.startswith("SM") and len(sent.sid) == 34 and sent.body == "Your plan is confirmed."
    delivered = hits(gateway, "/twilio/status")[-1]["form"]
    assert (delivered["MessageSid"], delivered["MessageStatus"]) == (sent.sid, "delivered")
    thread = sim.get("/sim/messages").json()
    assert [(m["direction"], m["body"]) for m in thread] == [
        ("inbound", "hello"), ("reply", "Hi! You said: hello"), ("reply", "Reply STOP to opt out."),
        ("outbound-api", "Your plan is confirmed.")]


@pytest.mark.parametrize("account_sid, token", [(SID, "wrong-token"), ("AC" + "6" * 32, TOKEN)])
def test_the_rest_api_wants_the_account_credentials(sim, account_sid, token):
    with pytest.raises(TwilioRestException) as error:
        twilio_client(sim, token=token, account_sid=account_sid).messages.create(to=CUSTOMER, from_=OURS, body="hi")
    assert error.value.status == 401 and error.value.code == 20003
    assert sim.get("/sim/messages").json() == []


def test_a_simulator_with_the_wrong_token_is_refused_by_the_gateway(gateway, monkeypatch):
    monkeypatch.setenv("SIMULATOR_GATEWAY_URL", gateway["url"])
    monkeypatch.setenv("PUBLIC_BASE_URL", PUBLIC)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "not-the-gateway-token")
    with TestClient(create_app()) as sim:
        response = sim.post("/sim/sms", json={"from": CUSTOMER, "body": "hello"})
        assert response.status_code == 502 and "403" in response.json()["detail"]
        state = sim.post("/sim/calls", json={"from": CUSTOMER}).json()
        assert state["status"] == "completed" and "403" in state["events"][2]["text"]


def test_the_page_and_reset(sim):
    page = sim.get("/")
    assert page.status_code == 200 and "Twilio simulator" in page.text and OURS in page.text and "http" not in page.text.split("<script>")[1]
    sim.post("/sim/sms", json={"from": CUSTOMER, "body": "hello"})
    assert sim.post("/sim/reset").json() == {"calls": 0, "messages": 0} and sim.get("/sim/messages").json() == []
