"""Runs conversations for every channel: opens them, passes each customer message to the Rasa engine with the
conversation's metadata, and keeps the masked transcript."""
import itertools
import socket
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Optional
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import select

from bot.normalize import find_entities
from kindly.db import session_scope
from kindly.models import Account, Conversation, Handoff, TranscriptTurn
from kindly.privacy import DOB_AGE_YEARS, DOB_WITHHELD, dob_matches, mask_text
from kindly.settings import settings
from kindly.timeline import account_timeline

# Longer messages are cut before NLU; nobody answers a collections call with an essay.
MAX_MESSAGE_CHARS = 500
# Twilio waits 15 s for a webhook's answer, and the customer hears an apology within 10 s if the engine is stuck.
ENGINE_TIMEOUT_SECONDS = 8


class _Opening(str):
    """The gateway's own command that opens a conversation. Customer text is never one, even "/greet"."""


START_TEXT = _Opening("/greet")


@dataclass
class BotReply:
    conversation_id: str
    messages: list[str] = field(default_factory=list)
    ended: bool = False
    stage: str = ""
    disposition: Optional[str] = None
    handoff_id: Optional[int] = None


class EngineUnavailable(RuntimeError):
    pass


class NoReply(EngineUnavailable):
    """The engine answered a turn with no message at all: one of its actions failed (the action server is down
    or erred), and Rasa logs that and answers with nothing."""


def clean_text(text: str) -> str:
    """Drop control characters and binary noise, collapse whitespace, and cap the length."""
    printable = "".join(ch if ch.isprintable() else " " for ch in text)
    return " ".join(printable.split())[:MAX_MESSAGE_CHARS]


def not_a_command(text: str) -> str:
    """Rasa takes a message that starts with "/" (after stripping whitespace) as an intent given directly:
    /restart, /session_start, /greet{...}. The customer's text loses its leading slashes, so it is only ever
    text for the NLU."""
    return text.lstrip("/ ")


def start_conversation(account_id: int, channel: str, direction: str, external_ref: Optional[str] = None) -> str:
    with session_scope() as session:
        account = session.get(Account, account_id)
        conversation = Conversation(
            account_id=account.id,
            channel=channel,
            direction=direction,
            language=account.language,
            external_ref=external_ref,
        )
        session.add(conversation)
        session.flush()
        return conversation.id


def _begin_turn(conversation_id: str, said: Optional[str]) -> tuple[dict, Optional[str]]:
    """In one transaction: write down the customer's words (masked), and gather what the engine needs with
    them: whose conversation it is, the account's language, time zone and country, by which the extractor
    resolves "next Friday" and reads 5/3/1985, and the account's timeline (kindly.timeline).

    The engine gets the words masked too: its tracker store keeps every message, so a date of birth, a card
    number or an ID never reaches it. A date of birth is checked here instead, and the engine is told only
    whether one was given and whether it matched (`dob_check`)."""
    with session_scope() as session:
        conversation = session.get(Conversation, conversation_id)
        account = session.get(Account, conversation.account_id)
        today = datetime.now(ZoneInfo(account.timezone)).date()
        metadata = {
            "conversation_id": conversation.id, "account_id": account.id, "channel": conversation.channel,
            "direction": conversation.direction, "language": conversation.language, "timezone": account.timezone,
            "country": account.country, "timeline": account_timeline(session, account, today, conversation.id),
        }
        if said is None:
            return metadata, None
        session.add(TranscriptTurn(conversation_id=conversation_id, role="user", text=_masked_user_turn(said, today, conversation.stage)))
        metadata["dob_check"] = _dob_check(said, account, today)
        return metadata, mask_text(said, today)


def _dob_check(text: str, account: Account, today) -> Optional[str]:
    """"match" or "mismatch" when the words hold a date that could be a date of birth; None otherwise."""
    dates = [date.fromisoformat(e["value"]) for e in find_entities(text, today, account.country) if e["entity"] == "date"]
    candidates = [d for d in dates if d.year <= today.year - DOB_AGE_YEARS]
    if not candidates:
        return None
    return "match" if any(dob_matches(d, account.dob_hmac) for d in candidates) else "mismatch"


def _masked_user_turn(text: str, today, stage: str) -> str:
    # Whatever is said while the bot waits for a date of birth is never written down.
    if stage in ("verify", "right_party") and _has_date(text, today):
        return DOB_WITHHELD
    return mask_text(text, today)


def _has_date(text: str, today) -> bool:
    return any(e["entity"] == "date" for e in find_entities(text, today)) or any(ch.isdigit() for ch in text)


def record_turn(conversation_id: str, role: str, text: str) -> None:
    with session_scope() as session:
        session.add(TranscriptTurn(conversation_id=conversation_id, role=role, text=text))


_rotation = itertools.count()


def _post_to_an_engine(client: httpx.Client, path: str, **request) -> httpx.Response:
    """Posts to the next engine in rotation. The tracker store is shared and locked, so any engine serves any
    conversation; one that refuses the connection (down, or starting again) never saw the request, and the
    next one gets it instead."""
    urls = settings.rasa_urls
    start = next(_rotation)
    *others, last = (urls[(start + i) % len(urls)] for i in range(len(urls)))
    for url in others:
        try:
            return client.post(url + path, **request)
        except httpx.ConnectError:
            continue
    return client.post(last + path, **request)


def _ask_engine(client: httpx.Client, conversation_id: str, text: str, metadata: dict) -> list[str]:
    try:
        response = _post_to_an_engine(
            client, "/webhooks/kindly/webhook",
            json={"sender": conversation_id, "message": text, "metadata": metadata},
            timeout=ENGINE_TIMEOUT_SECONDS,
        )
        response.raise_for_status()
        return [m["text"] for m in response.json() if m.get("text")]
    except (httpx.HTTPError, ValueError) as error:
        raise EngineUnavailable(str(error) or type(error).__name__) from error


# TCP_NODELAY: httpx writes a POST's headers and body separately, and with Nagle's algorithm the body then
# waits for the engine's delayed ACK (about 40 ms a turn).
_client = httpx.Client(transport=httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]))


def send_message(conversation_id: str, text: str) -> BotReply:
    """One customer turn (or the opening, with START_TEXT): returns what the bot says and where it got to.
    NoReply when the bot has nothing to say: a failure, never a silent answer."""
    said = None if isinstance(text, _Opening) else clean_text(text)
    metadata, masked = _begin_turn(conversation_id, said)
    message = START_TEXT if masked is None else (not_a_command(masked) or "...")
    messages = _ask_engine(_client, conversation_id, message, metadata)
    if not messages:
        raise NoReply(f"the engine said nothing in conversation {conversation_id}")
    with session_scope() as session:
        conversation = session.get(Conversation, conversation_id)
        for message in messages:
            session.add(TranscriptTurn(conversation_id=conversation_id, role="bot", text=message))
        handoff = session.scalar(
            select(Handoff).where(Handoff.conversation_id == conversation_id).order_by(Handoff.id.desc())
        )
        return BotReply(
            conversation_id=conversation_id,
            messages=messages,
            ended=conversation.ended_at is not None,
            stage=conversation.stage,
            disposition=conversation.disposition,
            handoff_id=handoff.id if handoff else None,
        )
