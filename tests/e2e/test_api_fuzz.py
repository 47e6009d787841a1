"""Every operation of the gateway's OpenAPI schema, fuzzed by schemathesis against the live gateway of the `stack`
fixture, as the admin: whatever comes in, the answer is never a server error. The Twilio webhooks are in the
schema too, without the signature and the form body they need: they must refuse with a 4xx, not fail."""
import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from gateway.app import app
from tests.conftest import ADMIN_HEADERS, GATEWAY_URL

# The schema the gateway serves at /openapi.json, read from the same code at collection time, before the stack
# is up; the requests go to the live gateway.
schema = schemathesis.openapi.from_dict(app.openapi())


@schema.parametrize()
@settings(max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_no_input_makes_a_server_error(case, stack):
    case.call_and_validate(base_url=GATEWAY_URL, headers=ADMIN_HEADERS, checks=[not_a_server_error], timeout=30)


@pytest.mark.parametrize("path", ["/twilio/sms", "/twilio/voice", "/twilio/voice/turn?conversation=x&turn=1", "/twilio/status"])
def test_a_webhook_body_that_is_not_a_form_is_refused_before_it_is_read(stack, path):
    multipart = httpx.post(f"{GATEWAY_URL}{path}", files={"Body": ("x.txt", b"\xff" * 1000)}, data={"From": "+14155550123"})
    assert multipart.status_code == 415
    assert httpx.post(f"{GATEWAY_URL}{path}", json={"Body": "hi"}).status_code == 415
    assert httpx.post(f"{GATEWAY_URL}{path}", content=b"Body=hi").status_code == 415  # no content type


@pytest.mark.parametrize("method, path, body", [
    ("GET", f"/api/accounts/{2**64}", None),
    ("GET", "/api/accounts/-1", None),
    ("GET", f"/api/conversations?account_id={2**63}", None),
    ("GET", f"/api/handoffs?account_id={2**31}", None),
    ("GET", f"/api/handoffs/{2**70}", None),
    ("POST", f"/api/handoffs/{2**64}/resolve", {"disposition": "handoff", "note": "x"}),
    ("POST", "/api/contacts", {"account_id": 2**64, "channel": "sms"}),
    ("POST", "/api/contacts", {"account_id": -(2**64), "channel": "voice"}),
])
def test_ids_out_of_range_are_404_or_422(api, method, path, body):
    assert api.request(method, path, json=body).status_code in (404, 422)
