"""The one public HTTP service: Twilio webhooks, the REST API and the agent console."""
