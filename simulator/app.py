"""The simulator's HTTP side: Twilio's REST endpoints the project uses, a control API for people and tests,
and a web page. State lives in memory; carrier steps run to completion inside the control request."""
import base64
import hmac
import time
import xml.etree.ElementTree as ET
from email.utils import formatdate
from pathlib import Path
from typing import Literal, Optional

import httpx
from fastapi import BackgroundTasks, Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field

from simulator.carrier import FINAL, Call, Settings, Webhooks, new_sid

API = "/2010-04-01/Accounts/{account_sid}"
# Real carriers report delivery about a second later; the sender has stored the message sid by then.
DELIVERY_DELAY = 0.5


class TwilioError(Exception):
    def __init__(self, status: int, code: int, message: str):
        self.status, self.code, self.message = status, code, message


class Outage(BaseModel):
    messages: int = Field(ge=0, le=1000)


class Answer(BaseModel):
    as_: Literal["person", "machine"] = Field("person", alias="as")
    agent_answers: Optional[bool] = None


class Input(BaseModel):
    speech: str = ""
    digits: str = ""
    agent_answers: Optional[bool] = None  # whether the agent picks up if this answer leads to a <Dial>


class Reject(BaseModel):
    status: Literal["no-answer", "busy", "failed"] = "no-answer"


class InboundCall(BaseModel):
    from_: str = Field(alias="from")
    to: Optional[str] = None
    agent_answers: bool = True


class InboundSms(BaseModel):
    from_: str = Field(alias="from")
    to: Optional[str] = None
    body: str


def rfc2822(at: Optional[float]) -> Optional[str]:
    return formatdate(at, usegmt=True) if at else None


def create_app(settings: Optional[Settings] = None) -> FastAPI:
    settings = settings or Settings.from_env()
    hooks = Webhooks(settings)
    app = FastAPI(title="Kindly Twilio simulator")
    calls: dict[str, Call] = {}
    messages: list[dict] = []
    outage = {"messages": 0}

    @app.exception_handler(TwilioError)
    def twilio_error(request: Request, error: TwilioError) -> JSONResponse:
        body = {"code": error.code, "message": error.message, "more_info": f"https://www.twilio.com/docs/errors/{error.code}", "status": error.status}
        headers = {"WWW-Authenticate": 'Basic realm="Twilio API"'} if error.status == 401 else None
        return JSONResponse(body, status_code=error.status, headers=headers)

    async def twilio_form(account_sid: str, request: Request):
        """The REST request's form, once its basic auth names our account and token."""
        expected = "Basic " + base64.b64encode(f"{settings.account_sid}:{settings.auth_token}".encode()).decode()
        if account_sid != settings.account_sid or not hmac.compare_digest(request.headers.get("Authorization", ""), expected):
            raise TwilioError(401, 20003, "Authenticate")
        return await request.form()

    def required(form, *names: str) -> None:
        for name in names:
            if not form.get(name):
                raise TwilioError(400, 21201 if name == "To" else 21604 if name == "Body" else 21205, f"A '{name}' parameter is required.")

    def call_or_404(sid: str) -> Call:
        if sid not in calls:
            raise HTTPException(status_code=404, detail=f"no call {sid}")
        return calls[sid]

    def call_resource(call: Call, status: Optional[str] = None) -> dict:
        return {
            "sid": call.sid, "account_sid": settings.account_sid, "to": call.to, "from": call.from_,
            "status": status or call.status, "direction": call.direction, "answered_by": call.answered_by,
            "date_created": rfc2822(call.created), "start_time": rfc2822(call.answered_at),
            "duration": str(call.duration()) if call.status in FINAL else None, "api_version": "2010-04-01",
            "parent_call_sid": None, "price": None, "uri": f"{API.format(account_sid=settings.account_sid)}/Calls/{call.sid}.json",
        }

    # ------------------------------------------------------------------ Twilio REST
    # The handlers are plain functions, so FastAPI runs them in its thread pool: a webhook the carrier sends
    # from here may make the gateway call this REST API back.

    @app.post(API + "/Calls.json", status_code=201)
    def create_call(form=Depends(twilio_form)) -> dict:
        required(form, "To", "From")
        if not (form.get("Url") or form.get("Twiml")):
            raise TwilioError(400, 21205, "Either a 'Url' or 'Twiml' parameter is required.")
        call = Call(
            hooks=hooks, sid=new_sid("CA"), to=form["To"], from_=form["From"], direction="outbound-api",
            url=form.get("Url", ""), twiml=form.get("Twiml", ""), status_callback=form.get("StatusCallback"),
            machine_detection=form.get("MachineDetection"),
        )
        call.status_events |= {e for value in form.getlist("StatusCallbackEvent") for e in value.split()}
        call.event("ringing", f"calling {call.to}")
        calls[call.sid] = call
        return call_resource(call, status="queued")

    @app.get(API + "/Calls/{call_sid}.json")
    def fetch_call(call_sid: str, form=Depends(twilio_form)) -> dict:
        return call_resource(call_or_404(call_sid))

    @app.post(API + "/Calls/{call_sid}.json")
    def update_call(call_sid: str, form=Depends(twilio_form)) -> dict:
        call = call_or_404(call_sid)
        if call.status in FINAL:
            raise TwilioError(400, 21220, "Call is not in-progress. Cannot redirect.")
        if form.get("Status") in ("completed", "canceled"):
            call.event("REST", f"the gateway ends the call (Status={form['Status']})")
            call.end("canceled" if call.status == "ringing" else "completed")
        elif form.get("Twiml"):
            call.event("REST", "the gateway replaces the call's TwiML")
            call.documents = 0
            call.run(list(ET.fromstring(form["Twiml"])))
        elif form.get("Url"):
            call.event("REST", f"the gateway redirects the call to {form['Url']}")
            call.documents = 0
            call.fetch(form["Url"])
        return call_resource(call)

    @app.post(API + "/Messages.json", status_code=201)
    def create_message(background: BackgroundTasks, form=Depends(twilio_form)) -> dict:
        required(form, "To", "Body")
        if outage["messages"] > 0:  # POST /sim/outage: Twilio has a bad moment
            outage["messages"] -= 1
            raise TwilioError(503, 20503, "Service unavailable")
        message = {"sid": new_sid("SM"), "to": form["To"], "from": form.get("From", settings.our_number),
                   "body": form["Body"], "direction": "outbound-api", "status": "queued", "date_created": rfc2822(time.time())}
        messages.append(message)
        if form.get("StatusCallback"):
            background.add_task(deliver, message, form["StatusCallback"])
        return {**message, "account_sid": settings.account_sid, "num_segments": "1", "num_media": "0",
                "api_version": "2010-04-01", "uri": f"{API.format(account_sid=settings.account_sid)}/Messages/{message['sid']}.json"}

    def deliver(message: dict, status_callback: str) -> None:
        time.sleep(DELIVERY_DELAY)
        message["status"] = "delivered"
        params = {"MessageSid": message["sid"], "SmsSid": message["sid"], "MessageStatus": "delivered", "SmsStatus": "delivered",
                  "AccountSid": settings.account_sid, "From": message["from"], "To": message["to"], "ApiVersion": "2010-04-01"}
        try:
            message["callback"] = hooks.post(status_callback, params).status_code
        except httpx.HTTPError as error:
            message["callback"] = f"failed: {error}"

    @app.get(API + "/Messages/{message_sid}.json")
    def fetch_message(message_sid: str, form=Depends(twilio_form)) -> dict:
        for message in messages:
            if message["sid"] == message_sid:
                return {**message, "account_sid": settings.account_sid}
        raise TwilioError(404, 20404, f"The requested resource {message_sid} was not found")

    # ------------------------------------------------------------------ control: the person on the phone

    @app.get("/sim/calls")
    def list_calls() -> list[dict]:
        return [call.as_json() for call in calls.values()]

    @app.get("/sim/calls/{sid}")
    def get_call(sid: str) -> dict:
        return call_or_404(sid).as_json()

    @app.post("/sim/calls")
    def place_inbound_call(body: InboundCall) -> dict:
        call = Call(hooks=hooks, sid=new_sid("CA"), to=body.to or settings.our_number, from_=body.from_, direction="inbound",
                    url=f"{settings.public_base_url}/twilio/voice", status_callback=f"{settings.public_base_url}/twilio/status",
                    agent_answers=body.agent_answers)
        calls[call.sid] = call
        with call.lock:
            call.event("ringing", f"{call.from_} calls {call.to}")
            call.answer()
        return call.as_json()

    @app.post("/sim/calls/{sid}/answer")
    def answer(sid: str, body: Answer) -> dict:
        call = call_or_404(sid)
        with call.lock:
            if call.status != "ringing":
                raise HTTPException(status_code=409, detail=f"the call is {call.status}")
            if body.agent_answers is not None:
                call.agent_answers = body.agent_answers
            call.answer(machine=body.as_ == "machine")
        return call.as_json()

    @app.post("/sim/calls/{sid}/reject")
    def reject(sid: str, body: Reject) -> dict:
        call = call_or_404(sid)
        with call.lock:
            if call.status != "ringing":
                raise HTTPException(status_code=409, detail=f"the call is {call.status}")
            call.end(body.status)
        return call.as_json()

    @app.post("/sim/calls/{sid}/input")
    def person_says(sid: str, body: Input) -> dict:
        call = call_or_404(sid)
        with call.lock:
            if call.gather is None:
                raise HTTPException(status_code=409, detail="the call is not waiting for an answer")
            if body.agent_answers is not None:
                call.agent_answers = body.agent_answers
            call.hear(body.speech.strip(), body.digits.strip())
        return call.as_json()

    @app.post("/sim/calls/{sid}/hangup")
    def hang_up(sid: str) -> dict:
        call = call_or_404(sid)
        with call.lock:
            if call.status == "ringing":
                raise HTTPException(status_code=409, detail="the call is ringing: answer or reject it")
            call.event("person", "(hangs up)")
            call.end("completed")
        return call.as_json()

    # ------------------------------------------------------------------ control: texts

    @app.get("/sim/messages")
    def list_messages() -> list[dict]:
        return messages

    @app.post("/sim/sms")
    def person_texts(body: InboundSms) -> list[dict]:
        """A text from the person's phone; the gateway's TwiML <Message>s come back as the replies."""
        sid, to = new_sid("SM"), body.to or settings.our_number
        messages.append({"sid": sid, "to": to, "from": body.from_, "body": body.body, "direction": "inbound",
                         "status": "received", "date_created": rfc2822(time.time())})
        params = {"MessageSid": sid, "SmsMessageSid": sid, "SmsSid": sid, "AccountSid": settings.account_sid,
                  "From": body.from_, "To": to, "Body": body.body, "NumMedia": "0", "NumSegments": "1",
                  "SmsStatus": "received", "ApiVersion": "2010-04-01"}
        try:
            response = hooks.post(f"{settings.public_base_url}/twilio/sms", params)
            if response.status_code != 200:
                raise HTTPException(status_code=502, detail=f"the gateway answered {response.status_code}: {response.text[:300]}")
            root = ET.fromstring(response.text)
        except (httpx.HTTPError, ET.ParseError) as error:
            raise HTTPException(status_code=502, detail=f"the gateway's answer is unusable: {error}")
        replies = [{"sid": new_sid("SM"), "to": body.from_, "from": to, "direction": "reply", "status": "delivered",
                    "body": m.findtext("Body", "") if m.find("Body") is not None else (m.text or "").strip(),
                    "date_created": rfc2822(time.time())} for m in root.iter("Message")]
        messages.extend(replies)
        return replies

    @app.post("/sim/outage")
    def start_outage(body: Outage) -> dict:
        """The next `messages` SMS requests fail with 503, as Twilio's API does in an outage."""
        outage["messages"] = body.messages
        return outage

    @app.post("/sim/reset")
    def reset() -> dict:
        calls.clear()
        messages.clear()
        return {"calls": 0, "messages": 0}

    # ------------------------------------------------------------------ the page

    def gateway_api(method: str, path: str, **kwargs) -> httpx.Response:
        return httpx.request(method, f"{settings.gateway_url}{path}", headers={"Authorization": f"Bearer {settings.admin_api_key}"}, timeout=60, **kwargs)

    @app.get("/sim/accounts")
    def demo_accounts() -> list[dict]:
        try:
            response = gateway_api("GET", "/api/accounts")
            return response.json() if response.status_code == 200 else []
        except (httpx.HTTPError, ValueError):
            return []

    @app.post("/sim/contacts")
    def ask_gateway_to_contact(body: dict) -> dict:
        """The page's "call me" / "text me" buttons: the gateway's own outbound API, as a manager would use it."""
        try:
            response = gateway_api("POST", "/api/contacts", json=body)
            return {"status": response.status_code, "body": response.json()}
        except (httpx.HTTPError, ValueError) as error:
            return {"status": 502, "body": {"detail": str(error)}}

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return Path(__file__).with_name("page.html").read_text(encoding="utf-8").replace("{{OUR_NUMBER}}", settings.our_number)

    return app


app = create_app()
