"""A local stand-in for Twilio: its REST API (Calls, Messages, call updates) and the carrier, which calls the
gateway's webhooks with signed requests and carries out the TwiML it gets back. See simulator/README.md.

Pointing twilio 9's Python client at it (read from twilio/rest/api/ApiBase.py and twilio/base/domain.py: the
Api domain builds every URL from its `base_url`)::

    client = Client(account_sid, auth_token)
    client.api.base_url = "http://127.0.0.1:8001"   # TWILIO_API_BASE_URL

TWILIO_EDGE / TWILIO_REGION must stay unset: with either, the client rewrites the host name of every URL.
"""
