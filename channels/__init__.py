"""How customers reach the bot: Twilio voice and SMS, and the terminal chat, all through channels.conversation."""
