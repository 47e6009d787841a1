"""The contact policy through the real API: simultaneous requests for one account never pass the cap, and the
simulator (standing in for Twilio) sees exactly the calls that were placed."""
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.conftest import ADMIN_HEADERS, GATEWAY_URL, SIMULATOR_URL
from tests.e2e.helpers import new_account
from tests.e2e.twilio_peer import daytime_phone

def test_twelve_simultaneous_calls_for_one_us_account_place_exactly_seven(api):
    phone, zone = daytime_phone()
    account = new_account(api, phone=phone, timezone=zone, country="US")
    start = threading.Barrier(12)

    def contact(_):
        with httpx.Client(base_url=GATEWAY_URL, headers=ADMIN_HEADERS, timeout=120) as client:
            start.wait()
            return client.post("/api/contacts", json={"account_id": account["id"], "channel": "voice"})

    with ThreadPoolExecutor(12) as pool:
        responses = list(pool.map(contact, range(12)))
    placed = [r.json() for r in responses if r.status_code == 201]
    refused = [r.json() for r in responses if r.status_code == 409]
    assert (len(placed), len(refused)) == (7, 5), [(r.status_code, r.text) for r in responses]
    assert {r["detail"]["rule"] for r in refused} == {"attempt_cap"}
    assert all(p["outcome"] == "initiated" and p["external_ref"].startswith("CA") for p in placed)
    calls = [c for c in httpx.get(f"{SIMULATOR_URL}/sim/calls", timeout=30).json() if c["to"] == phone]
    assert sorted(c["sid"] for c in calls) == sorted(p["external_ref"] for p in placed)
    again = api.post("/api/contacts", json={"account_id": account["id"], "channel": "voice"})
    assert again.status_code == 409 and again.json()["detail"]["rule"] == "attempt_cap"


def test_an_opening_sms_settles_its_reserved_attempt(api):
    phone, zone = daytime_phone()
    account = new_account(api, phone=phone, timezone=zone)
    response = api.post("/api/contacts", json={"account_id": account["id"], "channel": "sms"})
    assert response.status_code == 201, response.text
    attempt = response.json()
    assert attempt["outcome"] == "sent" and attempt["external_ref"].startswith("SM") and attempt["conversation_id"]
    texts = [m for m in httpx.get(f"{SIMULATOR_URL}/sim/messages", timeout=30).json() if m["to"] == phone]
    assert [m["sid"] for m in texts] == [attempt["external_ref"]]
