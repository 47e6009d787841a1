"""Every operation of the gateway's OpenAPI schema, fuzzed by schemathesis against the live gateway of the `stack`
fixture, as the admin: whatever comes in, the answer is never a server error. The Twilio webhooks are in the
schema too, without the signature and the form body they need: they must refuse with a 4xx, not fail."""
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
