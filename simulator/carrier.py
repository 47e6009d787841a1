"""The carrier's side of a call or a text: signed webhook requests to the gateway, and the TwiML carried out
verb by verb, as Twilio does."""
import os
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Optional
from urllib.parse import urljoin

import httpx
from twilio.request_validator import RequestValidator

FINAL = ("completed", "busy", "no-answer", "failed", "canceled")
# TwiML documents fetched for one step of the person; a <Redirect> loop ends the call instead of hanging.
MAX_DOCUMENTS = 25
MACHINE = {"DetectMessageEnd": "machine_end_beep", "Enable": "machine_start"}


@dataclass(frozen=True)
class Settings:
    gateway_url: str = "http://127.0.0.1:8000"
    public_base_url: str = "http://127.0.0.1:8000"
    account_sid: str = "AC00000000000000000000000000000000"
    auth_token: str = "dev-twilio-token"
    our_number: str = "+15005550006"
    admin_api_key: str = "dev-admin-key"

    @classmethod
    def from_env(cls) -> "Settings":
        gateway = os.environ.get("SIMULATOR_GATEWAY_URL", cls.gateway_url).rstrip("/")
        return cls(
            gateway_url=gateway,
            public_base_url=os.environ.get("PUBLIC_BASE_URL", gateway).rstrip("/"),
            account_sid=os.environ.get("TWILIO_ACCOUNT_SID", cls.account_sid),
            auth_token=os.environ.get("TWILIO_AUTH_TOKEN", cls.auth_token),
            our_number=os.environ.get("TWILIO_PHONE_NUMBER", cls.our_number),
            admin_api_key=os.environ.get("ADMIN_API_KEY", cls.admin_api_key),
        )


def new_sid(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


class Webhooks:
    """Requests to the gateway as Twilio makes them."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def absolute(self, url: str) -> str:
        return urljoin(self.settings.public_base_url + "/", url)

    def post(self, url: str, params: dict) -> httpx.Response:
        """The signature covers the public URL (with its query string); the request goes where the gateway
        really listens, which differs from the public URL behind a tunnel or proxy."""
        url, public = self.absolute(url), self.settings.public_base_url
        target = url
        if url == public or url.startswith((public + "/", public + "?")):
            target = self.settings.gateway_url + url[len(public):]
        signature = RequestValidator(self.settings.auth_token).compute_signature(url, params)
        return httpx.post(target, data=params, headers={"X-Twilio-Signature": signature}, timeout=60)


def says(root: ET.Element) -> str:
    return " ".join((say.text or "").strip() for say in root.iter("Say"))


@dataclass
class Call:
    hooks: Webhooks
    sid: str
    to: str
    from_: str
    direction: str  # inbound | outbound-api
    url: str = ""
    twiml: str = ""
    status_callback: Optional[str] = None
    status_events: set = field(default_factory=lambda: {"completed"})
    machine_detection: Optional[str] = None
    agent_answers: bool = True  # what happens at the next <Dial>
    status: str = "ringing"
    answered_by: Optional[str] = None
    transferred_to: Optional[str] = None
    queue: Optional[str] = None
    created: float = field(default_factory=time.time)
    answered_at: Optional[float] = None
    events: list = field(default_factory=list)  # what Twilio does, step by step
    gather: Optional[dict] = None
    after_gather: list = field(default_factory=list)
    document_url: str = ""
    documents: int = 0
    sequence: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def as_json(self) -> dict:
        return {
            "sid": self.sid, "to": self.to, "from": self.from_, "direction": self.direction, "status": self.status,
            "answered_by": self.answered_by, "transferred_to": self.transferred_to, "queue": self.queue,
            "agent_answers": self.agent_answers, "gather": self.gather, "events": self.events,
        }

    def duration(self) -> int:
        return int(time.time() - self.answered_at) if self.answered_at else 0

    def params(self, **extra) -> dict:
        settings = self.hooks.settings
        return {"CallSid": self.sid, "AccountSid": settings.account_sid, "From": self.from_, "To": self.to,
                "Direction": self.direction, "CallStatus": self.status, "ApiVersion": "2010-04-01", **extra}

    def event(self, verb: str, text: str, **extra) -> None:
        self.events.append({"verb": verb, "text": text, **extra})

    # ------------------------------------------------------------------ the person's side

    def answer(self, machine: bool = False) -> None:
        self.answered_at, self.documents = time.time(), 0
        if self.machine_detection:
            self.answered_by = MACHINE.get(self.machine_detection, "machine_start") if machine else "human"
        self.event("answered", "voicemail picked up" if machine else "the person answered")
        extra = {"AnsweredBy": self.answered_by} if self.answered_by else {}
        # Twilio asks an inbound call's webhook while it still rings; an outbound call's once it is answered.
        if self.direction != "inbound":
            self.status = "in-progress"
            self.callback("answered")
        if self.twiml:
            self.run(list(ET.fromstring(self.twiml)))
        else:
            self.fetch(self.url, **extra)
        if self.status == "ringing":
            self.status = "in-progress"

    def hear(self, speech: str = "", digits: str = "") -> None:
        """The person's answer to the current <Gather>: words, keys, or nothing."""
        gather, self.documents = self.gather, 0
        accepts = gather["input"].split()
        if speech:
            self.event("person", speech)
            if "speech" not in accepts:
                self.event("ignored", "this Gather does not listen for speech")
                speech = ""
        if digits:
            self.event("keypad", digits)
            if "dtmf" not in accepts:
                self.event("ignored", "this Gather does not take keys")
                digits = ""
            if gather["finish_on_key"] and gather["finish_on_key"] in digits:
                digits = digits[:digits.index(gather["finish_on_key"])]
            if gather["num_digits"]:
                digits = digits[:gather["num_digits"]]
        if not (speech or digits):
            self.event("silence", "the person says nothing")
        if speech or digits or gather["action_on_empty_result"]:
            extra = {"SpeechResult": speech, "Confidence": "0.92"} if speech else {}
            extra.update({"Digits": digits} if digits else {})
            self.fetch(gather["action"], **extra)
        else:
            # Without actionOnEmptyResult Twilio goes on with the verbs after the <Gather>.
            self.run(self.after_gather)

    def end(self, status: str) -> None:
        if self.status in FINAL:
            return
        self.status, self.gather = status, None
        self.event("Hangup", f"call {status}")
        self.callback("completed", CallDuration=str(self.duration()))

    def callback(self, event: str, **extra) -> None:
        if not self.status_callback or event not in self.status_events:
            return
        self.sequence += 1
        params = self.params(CallbackSource="call-progress-events", SequenceNumber=str(self.sequence - 1), **extra)
        try:
            code = self.hooks.post(self.status_callback, params).status_code
        except httpx.HTTPError as error:
            code = f"failed: {error}"
        self.event("status", f"CallStatus={params['CallStatus']} sent to the status callback ({code})")

    # ------------------------------------------------------------------ carrying out TwiML

    def fetch(self, url: str, **extra) -> None:
        self.documents += 1
        if self.documents > MAX_DOCUMENTS:
            self.event("error", f"more than {MAX_DOCUMENTS} TwiML documents without the person saying anything")
            self.end("failed")
            return
        self.document_url = self.hooks.absolute(url)
        try:
            response = self.hooks.post(self.document_url, self.params(**extra))
            if response.status_code != 200:
                raise ValueError(f"answered {response.status_code}: {response.text[:300]}")
            root = ET.fromstring(response.text)
        except (httpx.HTTPError, ET.ParseError, ValueError) as error:
            # Twilio says "an application error has occurred" and hangs up.
            self.event("error", f"{self.document_url} {error}")
            self.end("completed")
            return
        self.run(list(root))

    def resolve(self, url: Optional[str]) -> str:
        return urljoin(self.document_url, (url or "").strip()) if self.document_url else self.hooks.absolute(url or "")

    def run(self, verbs: list) -> None:
        self.gather = None
        for index, verb in enumerate(verbs):
            if self.status in FINAL:
                return
            rest = verbs[index + 1:]
            if verb.tag in ("Say", "Play", "Pause"):
                self.speak(verb)
            elif verb.tag == "Gather":
                self.listen(verb, rest)
                return
            elif verb.tag == "Redirect":
                self.event("Redirect", self.resolve(verb.text))
                self.fetch(self.resolve(verb.text))
                return
            elif verb.tag == "Dial":
                self.dial(verb, rest)
                return
            elif verb.tag == "Enqueue":
                # The caller waits in the queue until an agent takes the call or they hang up.
                self.queue = (verb.text or "").strip()
                self.event("Enqueue", f"queued in {self.queue}")
                return
            elif verb.tag in ("Hangup", "Reject"):
                break
            else:
                self.event("ignored", f"<{verb.tag}> is not simulated")
        self.end("completed")

    def speak(self, verb: ET.Element) -> None:
        if verb.tag == "Say":
            self.event("Say", (verb.text or "").strip(), voice=verb.get("voice"), language=verb.get("language"))
        elif verb.tag == "Play":
            self.event("Play", (verb.text or "").strip() or f"{verb.get('digits')} (tones)")
        else:
            self.event("Pause", f"{verb.get('length', '1')} s")

    def listen(self, verb: ET.Element, rest: list) -> None:
        for child in verb:
            if child.tag in ("Say", "Play", "Pause"):
                self.speak(child)
        self.gather = {
            "action": self.resolve(verb.get("action")) if verb.get("action") else self.document_url,
            "input": verb.get("input", "dtmf"), "language": verb.get("language", "en-US"), "hints": verb.get("hints"),
            "action_on_empty_result": verb.get("actionOnEmptyResult") == "true",
            "finish_on_key": verb.get("finishOnKey", "#"), "num_digits": int(verb.get("numDigits", "0")),
        }
        self.after_gather = rest
        self.event("Gather", f"listening for {self.gather['input']} in {self.gather['language']}", hints=self.gather["hints"])

    def dial(self, verb: ET.Element, rest: list) -> None:
        targets = [child for child in verb if child.tag in ("Number", "Client", "Sip", "Queue", "Conference")]
        names = [(t.text or t.findtext("Identity") or "").strip() for t in targets] or [(verb.text or "").strip()]
        self.event("Dial", f"dialling {', '.join(names)}")
        child_sid, status = new_sid("CA"), "completed" if self.agent_answers else "no-answer"
        if self.agent_answers:
            for target in targets:
                if target.tag == "Number" and target.get("url"):
                    self.whisper(self.resolve(target.get("url")), child_sid, (target.text or "").strip(), verb.get("callerId"))
            self.transferred_to = names[0]
            self.event("transfer", f"transferred to {names[0]}")
        else:
            self.event("Dial", f"{names[0]} does not answer")
        if verb.get("action"):
            self.fetch(self.resolve(verb.get("action")), DialCallStatus=status, DialCallSid=child_sid,
                       DialCallDuration="0")
        else:
            self.run(rest)

    def whisper(self, url: str, child_sid: str, number: str, caller_id: Optional[str]) -> None:
        """What the agent hears before being connected: Twilio asks the url with the agent's leg of the call."""
        params = {"CallSid": child_sid, "ParentCallSid": self.sid, "AccountSid": self.hooks.settings.account_sid,
                  "From": caller_id or self.from_, "To": number, "Direction": "outbound-dial",
                  "CallStatus": "in-progress", "ApiVersion": "2010-04-01"}
        try:
            response = self.hooks.post(url, params)
            heard = says(ET.fromstring(response.text)) if response.status_code == 200 else ""
            if response.status_code != 200:
                self.event("error", f"whisper {url} answered {response.status_code}")
        except (httpx.HTTPError, ET.ParseError) as error:
            heard = ""
            self.event("error", f"whisper {url}: {error}")
        self.event("Whisper", heard, to=number)
