"""The input channel the gateway uses to reach Rasa on loopback (`/webhooks/kindly/webhook`).

It is Rasa's REST channel with one rule added: every message must name the conversation it belongs to in
its metadata, so the session start can load the account, the channel and the language."""
from typing import Any, Dict, Optional, Text

from rasa.core.channels.rest import RestInput
from sanic.exceptions import InvalidUsage
from sanic.request import Request

from bot import action_response_check

# The engine loads this channel at start-up (credentials.yml), which is where the faster check goes in.
action_response_check.install()


class KindlyInput(RestInput):
    @classmethod
    def name(cls) -> Text:
        return "kindly"

    def get_metadata(self, request: Request) -> Optional[Dict[Text, Any]]:
        metadata = (request.json or {}).get("metadata") or {}
        if not metadata.get("conversation_id"):
            raise InvalidUsage("metadata.conversation_id is required")
        return metadata
