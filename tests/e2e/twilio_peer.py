"""Plays Twilio towards the gateway in tests: signed webhook requests (the real twilio RequestValidator) and
the TwiML answers parsed."""
import itertools
import os
import uuid
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from typing import Optional
from zoneinfo import ZoneInfo

import httpx
from twilio.request_validator import RequestValidator

from tests.conftest import GATEWAY_URL

AUTH_TOKEN = "test-twilio-token"
OUR_NUMBER = "+15005550006"
# Zones spread around the clock, to find one where it is now daytime (or night) for the calling window.
ZONES = [
    "Pacific/Pago_Pago", "Pacific/Honolulu", "America/Anchorage", "America/Los_Angeles", "America/Denver",
    "America/Chicago", "America/New_York", "America/Sao_Paulo", "Atlantic/South_Georgia", "Atlantic/Azores",
    "Europe/London", "Europe/Berlin", "Europe/Athens", "Europe/Moscow", "Asia/Dubai", "Asia/Karachi",
    "Asia/Dhaka", "Asia/Bangkok", "Asia/Shanghai", "Asia/Tokyo", "Australia/Brisbane", "Pacific/Noumea",
    "Pacific/Auckland", "Pacific/Tongatapu", "Pacific/Kiritimati",
]


# Phones whose number says the same time zone as the account, around the clock, for a daytime (or night) contact now. The
# suffixes start at 5000, above the ones tests/conftest.py hands out, so no two test accounts share a phone.
DAYTIME_PHONES = [
    ("+1212555{:04d}", "America/New_York"), ("+1415555{:04d}", "America/Los_Angeles"),
    ("+1808555{:04d}", "Pacific/Honolulu"), ("+1671555{:04d}", "Pacific/Guam"),
    ("+44207946{:04d}", "Europe/London"), ("+861380000{:04d}", "Asia/Shanghai"),
]
_daytime_serial = itertools.count(5000 + os.getpid() % 4000)


def zone_where_hour_is(low: int, high: int) -> str:
    return next(z for z in ZONES if low <= datetime.now(ZoneInfo(z)).hour < high)


def daytime_phone() -> tuple[str, str]:
    """A phone and time zone where it is between 09:00 and 19:00 now, in every zone the contact policy sees for
    them: far from the window's edges for the length of the test."""
    return phone_where(range(9, 19), "daytime")


def night_phone() -> tuple[str, str]:
    """A phone and time zone where it is between 22:00 and 07:00 now in every zone the contact policy sees for
    them: outside the calling window, at least an hour before it opens."""
    return phone_where([22, 23, 0, 1, 2, 3, 4, 5, 6], "night")


def phone_where(hours, what: str) -> tuple[str, str]:
    from kindly.contact_policy import contact_zones
    from kindly.models import Account

    now = datetime.now(timezone.utc)
    serial = next(_daytime_serial) % 10_000
    for pattern, zone in DAYTIME_PHONES:
        phone = pattern.format(serial)
        if all(now.astimezone(ZoneInfo(z)).hour in hours for z in contact_zones(Account(phone=phone, timezone=zone, country="US"))):
            return phone, zone
    raise AssertionError(f"no {what} phone at {now:%H:%M} UTC")


def post_signed(url: str, params: dict, token: str = AUTH_TOKEN) -> httpx.Response:
    signature = RequestValidator(token).compute_signature(url, params)
    return httpx.post(url, data=params, headers={"X-Twilio-Signature": signature}, timeout=60)


def twiml(response: httpx.Response) -> ET.Element:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    return ET.fromstring(response.text)


def spoken(root: ET.Element) -> str:
    return " ".join(say.text or "" for say in root.iter("Say"))


class Call:
    """One phone call, as Twilio would drive the gateway's voice webhooks."""

    def __init__(self, customer_phone: str, direction: str = "inbound"):
        self.sid = "CA" + uuid.uuid4().hex
        self.customer, self.direction = customer_phone, direction
        self.root: Optional[ET.Element] = None

    def params(self, **extra) -> dict:
        inbound = self.direction == "inbound"
        return {
            "CallSid": self.sid, "AccountSid": "AC" + "1" * 32, "ApiVersion": "2010-04-01",
            "From": self.customer if inbound else OUR_NUMBER, "To": OUR_NUMBER if inbound else self.customer,
            "Direction": self.direction, "CallStatus": "in-progress", **extra,
        }

    def answer(self, query: str = "", **extra) -> ET.Element:
        self.root = twiml(post_signed(f"{GATEWAY_URL}/twilio/voice{query}", self.params(**extra)))
        return self.root

    def gather_url(self) -> str:
        gather = self.root.find("Gather")
        assert gather is not None, ET.tostring(self.root)
        return gather.get("action")

    def say(self, speech: str = "", digits: str = "") -> ET.Element:
        extra = {"SpeechResult": speech, "Confidence": "0.9"} if speech else {}
        extra.update({"Digits": digits} if digits else {})
        self.root = twiml(post_signed(self.gather_url(), self.params(**extra)))
        return self.root


def sms(customer_phone: str, body: str, sid: Optional[str] = None) -> ET.Element:
    params = {
        "MessageSid": sid or "SM" + uuid.uuid4().hex, "AccountSid": "AC" + "1" * 32, "From": customer_phone,
        "To": OUR_NUMBER, "Body": body, "NumMedia": "0",
    }
    return twiml(post_signed(f"{GATEWAY_URL}/twilio/sms", params))


def replies(root: ET.Element) -> list[str]:
    return [(m.text or "") if m.find("Body") is None else (m.find("Body").text or "") for m in root.iter("Message")]
