"""Driving a whole conversation through the real engine and action server, then reading it back by the API."""
from dataclasses import dataclass, field

import httpx

from channels.conversation import START_TEXT, send_message, start_conversation
from tests.conftest import account_fields

# Nothing said before verification may hint at a debt.
DEBT_WORDS = ["debt", "overdue", "past due", "balance", "owe", "payment", "$", "欠", "逾期", "债", "还款", "¥", "金额"]


@dataclass
class Conversation:
    api: httpx.Client
    account: dict
    id: str = ""
    said: list[list[str]] = field(default_factory=list)  # the bot's messages, turn by turn
    ended: bool = False

    def start(self, channel: str = "sms") -> "Conversation":
        self.id = start_conversation(self.account["id"], channel, "outbound")
        self.said.append(send_message(self.id, START_TEXT).messages)
        return self

    def say(self, text: str) -> list[str]:
        assert not self.ended, "the conversation already ended"
        reply = send_message(self.id, text)
        self.said.append(reply.messages)
        self.ended = reply.ended
        return reply.messages

    def record(self) -> dict:
        conversations = self.api.get("/api/conversations", params={"account_id": self.account["id"]}).json()
        return next(c for c in conversations if c["id"] == self.id)

    def promises(self) -> list[dict]:
        return self.api.get("/api/promises", params={"account_id": self.account["id"]}).json()

    def handoffs(self) -> list[dict]:
        return self.api.get("/api/handoffs", params={"account_id": self.account["id"]}).json()

    def fresh_account(self) -> dict:
        return self.api.get(f"/api/accounts/{self.account['id']}").json()


def new_account(api: httpx.Client, **overrides) -> dict:
    response = api.post("/api/accounts", json=account_fields(**overrides))
    assert response.status_code == 201, response.text
    return response.json()


def assert_nothing_disclosed(messages: list[list[str]], account: dict) -> None:
    text = " ".join(m for turn in messages for m in turn).lower()
    for word in DEBT_WORDS + [account["balance"], account["minimum_due"], account["card_last4"]]:
        assert word.lower() not in text, f"{word!r} was said before verification: {text}"
