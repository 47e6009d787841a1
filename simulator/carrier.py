"""The carrier's side of a call or a text: signed webhook requests to the gateway, and the TwiML carried out
verb by verb, as Twilio does."""
import os
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Optional
from urllib.parse import urljoin

import httpx
from twilio.request_validator import RequestValidator

GATEWAY_URL = os.environ.get("SIMULATOR_GATEWAY_URL", "http://127.0.0.1:8000").rstrip("/")
PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", GATEWAY_URL).rstrip("/")
ACCOUNT_SID = os.environ.get("TWILIO_ACCOUNT_SID", "AC00000000000000000000000000000000")
AUTH_TOKEN = os.environ.get("TWILIO_AUTH_TOKEN", "dev-twilio-token")


def new_sid(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


def signed_post(url: str, params: dict) -> httpx.Response:
    """POST as Twilio does: the signature covers the public URL; the request goes to the gateway itself."""
    url = urljoin(PUBLIC_BASE_URL + "/", url)
    transport_url = GATEWAY_URL + url[len(PUBLIC_BASE_URL):] if url.startswith(PUBLIC_BASE_URL) else url
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, params)
    return httpx.post(transport_url, data=params, headers={"X-Twilio-Signature": signature}, timeout=60)


@dataclass
class Call:
    sid: str
    to: str
    from_: str
    direction: str  # inbound | outbound-api
    url: str
    status_callback: Optional[str] = None
    machine_detection: bool = False
    status: str = "ringing"
    started: float = field(default_factory=time.time)
    events: list = field(default_factory=list)  # what Twilio does, step by step
    gather: Optional[dict] = None
    after_gather: list = field(default_factory=list)
    document_url: str = ""

    def as_json(self) -> dict:
        return {
            "sid": self.sid, "to": self.to, "from": self.from_, "direction": self.direction, "status": self.status,
            "events": self.events, "gather": self.gather,
        }

    def params(self, **extra) -> dict:
        status = "in-progress" if self.status in ("in-progress", "transferred") else self.status
        return {"CallSid": self.sid, "AccountSid": ACCOUNT_SID, "From": self.from_, "To": self.to,
                "Direction": self.direction, "CallStatus": status, "ApiVersion": "2010-04-01", **extra}

    # ------------------------------------------------------------------ carrying out TwiML

    def fetch(self, url: str, **extra) -> None:
        self.document_url = urljoin(PUBLIC_BASE_URL + "/", url)
        response = signed_post(self.document_url, self.params(**extra))
        if response.status_code != 200:
            self.events.append({"verb": "error", "text": f"webhook answered {response.status_code}"})
            self.end("failed")
            return
        self.run(list(ET.fromstring(response.text)))

    def run(self, verbs: list) -> None:
        self.gather = None
        for index, verb in enumerate(verbs):
            tag = verb.tag
            if tag == "Say":
                self.events.append({"verb": "Say", "text": verb.text or "", "voice": verb.get("voice"), "language": verb.get("language")})
            elif tag == "Play":
                self.events.append({"verb": "Play", "text": verb.text or ""})
            elif tag == "Gather":
                for say in verb.iter("Say"):
                    self.events.append({"verb": "Say", "text": say.text or "", "voice": say.get("voice"), "language": say.get("language")})
                self.gather = {"action": urljoin(self.document_url, verb.get("action") or self.document_url),
                               "input": verb.get("input"), "language": verb.get("language"), "hints": verb.get("hints"),
                               "on_empty": verb.get("actionOnEmptyResult") == "true"}
                self.after_gather = verbs[index + 1:]
                self.events.append({"verb": "Gather", "text": f"listening ({verb.get('input')}, {verb.get('language')})", "hints": verb.get("hints")})
                return
            elif tag == "Redirect":
                self.fetch(urljoin(self.document_url, verb.text.strip()))
                return
            elif tag == "Dial":
                self.dial(verb)
                return
            elif tag == "Enqueue":
                self.events.append({"verb": "Enqueue", "text": f"queued in {verb.text}"})
                self.end("completed")
                return
            elif tag in ("Hangup", "Reject"):
                break
        self.end("completed")

    def dial(self, verb: ET.Element) -> None:
        number = verb.find("Number")
        target = (number.text if number is not None else verb.text or "").strip()
        self.events.append({"verb": "Dial", "text": f"transferring to {target}"})
        if number is not None and number.get("url"):
            whisper = signed_post(urljoin(self.document_url, number.get("url")), self.params())
            heard = " ".join(s.text or "" for s in ET.fromstring(whisper.text).iter("Say")) if whisper.status_code == 200 else ""
            self.events.append({"verb": "Whisper", "text": heard})
        self.status = "transferred"
        if verb.get("action"):
            # The agent answered and the call with them ended; Twilio then asks the Dial's action what next.
            self.fetch(urljoin(self.document_url, verb.get("action")), DialCallStatus="completed")
        else:
            self.end("completed")

    def answer(self, machine: bool = False) -> None:
        self.status = "in-progress"
        extra = {"AnsweredBy": "machine_end_beep" if machine else "human"} if self.machine_detection else {}
        self.events.append({"verb": "answered", "text": "voicemail picked up" if machine else "the person answered"})
        self.fetch(self.url, **extra)

    def say(self, speech: str = "", digits: str = "") -> None:
        if self.gather is None:
            return
        if speech:
            self.events.append({"verb": "person", "text": speech})
        if digits:
            self.events.append({"verb": "keypad", "text": digits})
        if speech or digits or self.gather["on_empty"]:
            extra = {"SpeechResult": speech, "Confidence": "0.92"} if speech else {}
            extra.update({"Digits": digits} if digits else {})
            self.fetch(self.gather["action"], **extra)
        else:
            self.run(self.after_gather)

    def end(self, status: str) -> None:
        if self.status in ("completed", "no-answer", "busy", "failed"):
            return
        self.status, self.gather = status, None
        self.events.append({"verb": "Hangup", "text": f"call {status}"})
        if self.status_callback:
            signed_post(self.status_callback, self.params(CallStatus=status, CallDuration=str(int(time.time() - self.started))))
