"""The simulator's HTTP side: Twilio's REST endpoints the project uses, a control API for people and tests,
and a web page. State lives in memory."""
import base64
import hmac
import os
from pathlib import Path
from typing import Optional

import httpx
import xml.etree.ElementTree as ET
from fastapi import BackgroundTasks, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from simulator.carrier import ACCOUNT_SID, AUTH_TOKEN, GATEWAY_URL, PUBLIC_BASE_URL, Call, new_sid, signed_post

OUR_NUMBER = os.environ.get("TWILIO_PHONE_NUMBER", "+15005550006")
ADMIN_API_KEY = os.environ.get("ADMIN_API_KEY", "dev-admin-key")
API = "/2010-04-01/Accounts/{account_sid}"


class Answer(BaseModel):
    as_: str = Field("person", alias="as")  # "person" or "machine"


class Input(BaseModel):
    speech: str = ""
    digits: str = ""


class Reject(BaseModel):
    status: str = "no-answer"


class InboundCall(BaseModel):
    from_: str = Field(alias="from")
    to: str = OUR_NUMBER


class InboundSms(InboundCall):
    body: str


def create_app() -> FastAPI:
    app = FastAPI(title="Kindly Twilio simulator")
    calls: dict[str, Call] = {}
    messages: list[dict] = []

    def check_auth(request: Request, account_sid: str) -> None:
        expected = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
        if account_sid != ACCOUNT_SID or not hmac.compare_digest(request.headers.get("Authorization", ""), expected):
            raise HTTPException(status_code=401, detail={"code": 20003, "message": "Authenticate"})

    def call_or_404(sid: str) -> Call:
        if sid not in calls:
            raise HTTPException(status_code=404, detail=f"no call {sid}")
        return calls[sid]

    # ------------------------------------------------------------------ Twilio REST

    @app.post(API + "/Calls.json", status_code=201)
    async def create_call(account_sid: str, request: Request) -> dict:
        check_auth(request, account_sid)
        form = await request.form()
        call = Call(
            sid=new_sid("CA"), to=form["To"], from_=form["From"], direction="outbound-api", url=form["Url"],
            status_callback=form.get("StatusCallback"), machine_detection=bool(form.get("MachineDetection")),
        )
        call.events.append({"verb": "ringing", "text": f"calling {call.to}"})
        calls[call.sid] = call
        return {"sid": call.sid, "account_sid": ACCOUNT_SID, "to": call.to, "from": call.from_, "status": "queued",
                "direction": "outbound-api", "uri": f"{API.format(account_sid=account_sid)}/Calls/{call.sid}.json"}

    @app.post(API + "/Calls/{call_sid}.json")
    async def update_call(account_sid: str, call_sid: str, request: Request) -> dict:
        check_auth(request, account_sid)
        call, form = call_or_404(call_sid), await request.form()
        if form.get("Status") in ("completed", "canceled"):
            call.end("completed")
        elif form.get("Url"):
            call.fetch(form["Url"])
        elif form.get("Twiml"):
            call.run(list(ET.fromstring(form["Twiml"])))
        return {"sid": call.sid, "status": call.status, "to": call.to, "from": call.from_}

    @app.post(API + "/Messages.json", status_code=201)
    async def create_message(account_sid: str, request: Request, background: BackgroundTasks) -> dict:
        check_auth(request, account_sid)
        form = await request.form()
        message = {"sid": new_sid("SM"), "to": form["To"], "from": form.get("From", OUR_NUMBER), "body": form.get("Body", ""),
                   "direction": "outbound-api", "status": "sent"}
        messages.append(message)
        if form.get("StatusCallback"):
            background.add_task(signed_post, form["StatusCallback"],
                                {"MessageSid": message["sid"], "MessageStatus": "delivered", "AccountSid": ACCOUNT_SID,
                                 "To": message["to"], "From": message["from"]})
        return {**message, "account_sid": ACCOUNT_SID, "num_segments": "1"}

    # ------------------------------------------------------------------ control: the person on the phone

    @app.get("/sim/calls")
    def list_calls() -> list[dict]:
        return [call.as_json() for call in calls.values()]

    @app.get("/sim/calls/{sid}")
    def get_call(sid: str) -> dict:
        return call_or_404(sid).as_json()

    @app.post("/sim/calls")
    def place_inbound_call(body: InboundCall) -> dict:
        call = Call(sid=new_sid("CA"), to=body.to, from_=body.from_, direction="inbound", url=f"{PUBLIC_BASE_URL}/twilio/voice")
        calls[call.sid] = call
        call.answer()
        return call.as_json()

    @app.post("/sim/calls/{sid}/answer")
    def answer(sid: str, body: Answer) -> dict:
        call = call_or_404(sid)
        if call.status != "ringing":
            raise HTTPException(status_code=409, detail=f"the call is {call.status}")
        call.answer(machine=body.as_ == "machine")
        return call.as_json()

    @app.post("/sim/calls/{sid}/input")
    def person_says(sid: str, body: Input) -> dict:
        call = call_or_404(sid)
        if call.gather is None:
            raise HTTPException(status_code=409, detail="the call is not waiting for an answer")
        call.say(body.speech.strip(), body.digits.strip())
        return call.as_json()

    @app.post("/sim/calls/{sid}/reject")
    def reject(sid: str, body: Reject) -> dict:
        call = call_or_404(sid)
        call.end(body.status if body.status in ("no-answer", "busy", "failed") else "no-answer")
        return call.as_json()

    @app.post("/sim/calls/{sid}/hangup")
    def hang_up(sid: str) -> dict:
        call = call_or_404(sid)
        call.end("completed")
        return call.as_json()

    # ------------------------------------------------------------------ control: texts

    @app.get("/sim/messages")
    def list_messages() -> list[dict]:
        return messages

    @app.post("/sim/sms")
    def person_texts(body: InboundSms) -> list[dict]:
        sid = new_sid("SM")
        messages.append({"sid": sid, "to": body.to, "from": body.from_, "body": body.body, "direction": "inbound", "status": "received"})
        response = signed_post(f"{PUBLIC_BASE_URL}/twilio/sms", {
            "MessageSid": sid, "AccountSid": ACCOUNT_SID, "From": body.from_, "To": body.to, "Body": body.body, "NumMedia": "0",
        })
        if response.status_code != 200:
            raise HTTPException(status_code=502, detail=f"the gateway answered {response.status_code}")
        replies = [{"sid": new_sid("SM"), "to": body.from_, "from": body.to, "body": m.text or "", "direction": "reply", "status": "sent"}
                   for m in ET.fromstring(response.text).iter("Message")]
        messages.extend(replies)
        return replies

    @app.post("/sim/reset")
    def reset() -> dict:
        calls.clear()
        messages.clear()
        return {"calls": 0, "messages": 0}

    # ------------------------------------------------------------------ the page

    @app.get("/sim/accounts")
    def demo_accounts() -> list[dict]:
        try:
            response = httpx.get(f"{GATEWAY_URL}/api/accounts", headers={"Authorization": f"Bearer {ADMIN_API_KEY}"}, timeout=10)
            return response.json() if response.status_code == 200 else []
        except httpx.HTTPError:
            return []

    @app.post("/sim/contacts")
    def ask_gateway_to_contact(body: dict) -> dict:
        """The page's "call me" / "text me" buttons: the gateway's own outbound API, as a manager would use it."""
        response = httpx.post(f"{GATEWAY_URL}/api/contacts", json=body, headers={"Authorization": f"Bearer {ADMIN_API_KEY}"}, timeout=60)
        return {"status": response.status_code, "body": response.json()}

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return (Path(__file__).with_name("page.html")).read_text(encoding="utf-8").replace("{{OUR_NUMBER}}", OUR_NUMBER)

    return app


app = create_app()
