"""A local stand-in for Twilio: its REST API (Calls, Messages, call updates) and the carrier, which calls the
gateway's webhooks with signed requests and carries out the TwiML it gets back."""
