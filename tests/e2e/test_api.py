"""The REST API over real HTTP: auth, validation, and what an account never reveals."""
import httpx

from tests.conftest import GATEWAY_URL, account_fields
from tests.e2e.helpers import new_account


def test_api_needs_the_bearer_token(stack):
    assert httpx.get(f"{GATEWAY_URL}/api/accounts").status_code == 401
    response = httpx.get(f"{GATEWAY_URL}/api/accounts", headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 401 and "detail" in response.json()


def test_created_account_never_returns_the_date_of_birth(api):
    account = new_account(api, segment=None, days_past_due=45)
    assert account["segment"] == "late" and account["opt_outs"] == []
    assert "date_of_birth" not in account and "dob_hmac" not in account and "1985" not in str(account)
    assert api.get(f"/api/accounts/{account['id']}").json() == account
    assert api.get("/api/accounts", params={"phone": account["phone"]}).json() == [account]


def test_bad_accounts_get_clear_4xx_errors(api):
    bad = [
        dict(phone="12345"),
        dict(minimum_due="2000.00"),
        dict(balance="-5"),
        dict(timezone="Mars/Olympus"),
        dict(date_of_birth="2199-01-01"),
        dict(due_date="2026-02-30"),
        dict(language="fr"),
        dict(card_last4="42a2"),
    ]
    for overrides in bad:
        response = api.post("/api/accounts", json=account_fields(**overrides))
        assert response.status_code == 422, (overrides, response.text)
        assert "detail" in response.json()


def test_duplicate_external_id_conflicts(api):
    fields = account_fields()
    assert api.post("/api/accounts", json=fields).status_code == 201
    fields["phone"] = "+14155559999"
    response = api.post("/api/accounts", json=fields)
    assert response.status_code == 409 and "already exists" in response.json()["detail"]


def test_unknown_account_is_404(api):
    assert api.get("/api/accounts/999999").status_code == 404
    assert api.get("/api/promises", params={"account_id": 999999}).status_code == 404
    assert api.get("/api/handoffs", params={"status": "bogus"}).status_code == 422


def test_console_needs_the_password_and_lists_waiting_handoffs(stack):
    with httpx.Client(base_url=GATEWAY_URL, follow_redirects=True) as browser:
        assert "password" in browser.get("/console").text
        assert "Wrong password" in browser.post("/console/login", data={"password": "nope"}).text
        queue = browser.post("/console/login", data={"password": "dev-console-password"})
        assert queue.status_code == 200 and "Handoffs waiting" in queue.text
        bad = browser.post("/console/handoffs/1/resolve", data={"disposition": "bogus"})
        assert bad.status_code == 422
