"""Card numbers, security codes, PINs and ID numbers texted in a real SMS conversation (signed webhooks, the real
engine and action server) come back masked in the transcript the API returns. The same secrets are watched for
in every log and every database row at the end of the session (tests/conftest.py)."""
import re

import httpx
import pytest

from tests.conftest import ACTION_PORT, ZH_ACCOUNT, watch_for_leaks
from tests.e2e.helpers import new_account
from tests.e2e.twilio_peer import replies, sms

# (what the customer texts after verification, the secrets in it, the card endings that must stay)
SCRIPTS = {
    "en": (
        ["yes this is alex", "1985-03-05"],
        [
            ("my card is 4012 8888 8888 1881 and the cvv is 737", ["4012 8888 8888 1881", "cvv is 737"], ["1881"]),
            ("the amex is 3782-822463-10005, security code 4821", ["3782-822463-10005", "security code 4821"], ["0005"]),
            ("ssn 536228147 and my passport number is 912803456", ["536228147", "912803456"], []),
            ("my pin is 8642, card 5555.5555.5555.4444", ["pin is 8642", "5555.5555.5555.4444"], ["4444"]),
        ],
    ),
    "zh": (
        ["是我", "1988年2月3日"],
        [
            ("卡号6222 0212 3456 7890 128，安全码是359", ["6222 0212 3456 7890 128", "安全码是359"], ["0128"]),
            ("身份证号11010519491231002X，护照号E12345678", ["11010519491231002X", "E12345678"], []),
            ("取款密码246810，社会安全号码412-73-9018", ["密码246810", "412-73-9018"], []),
        ],
    ),
}


def squash(text: str) -> str:
    return re.sub(r"[\s.\-]", "", text).lower()


@pytest.mark.parametrize("language", ["en", "zh"])
def test_secrets_texted_by_sms_are_masked_in_the_transcript(api, language):
    opening, secret_lines = SCRIPTS[language]
    for _, secrets, _ in secret_lines:
        watch_for_leaks(*secrets)
    account = new_account(api, **({} if language == "en" else ZH_ACCOUNT))
    for line in ["hi", *opening]:
        assert replies(sms(account["phone"], line))
    [conversation] = api.get("/api/conversations", params={"account_id": account["id"]}).json()
    assert conversation["verified"], conversation["transcript"]
    for line, _, _ in secret_lines:
        sms(account["phone"], line)

    conversations = api.get("/api/conversations", params={"account_id": account["id"]}).json()
    said = [turn["text"] for c in conversations for turn in c["transcript"] if turn["role"] == "user"]
    transcript = squash("\n".join(said))
    assert len(said) == 1 + len(opening) + len(secret_lines), said
    for _, secrets, endings in secret_lines:
        for secret in secrets:
            assert squash(secret) not in transcript, said
        for last4 in endings:
            assert f"[cardending{last4}]" in transcript, said


def test_an_action_error_is_answered_without_the_request(stack):
    """rasa-sdk answers an action that raised with the whole request (the tracker: all the customer said), and
    the engine logs that answer; ours names the error only."""
    server = f"http://127.0.0.1:{ACTION_PORT}"
    action = httpx.get(f"{server}/actions").json()[0]["name"]
    secret = "4242 4242 4242 4242"
    watch_for_leaks(secret)
    # No tracker: the action cannot run.
    answer = httpx.post(f"{server}/webhook", json={"next_action": action, "sender_id": "probe", "said": secret})
    assert answer.status_code == 500 and answer.json() == {"error": "KeyError"}
