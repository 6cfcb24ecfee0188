"""Channel transports, no Dramatiq: telegram (Bot API over httpx), email (SMTP), messages."""
