"""What a send can end in, besides success; the retry policy is read off the class.

DeliveryError
├── TransientError      nothing was delivered and trying later may work (connection refused,
│   │                   Telegram 5xx, SMTP 4xx)
│   └── RateLimitedError  Telegram 429: try again after retry_after_s, not before
├── PermanentError      refused for good (Telegram 400, SMTP 5xx, not configured, not linked)
│   └── BlockedError      Telegram 403: the user blocked the bot
└── UncertainError      the request left and no answer came back: it may have been delivered,
                        so it is never sent again (at most once)

Messages name the failure without the token, the password, the recipient or the text.
"""

from __future__ import annotations


class DeliveryError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TransientError(DeliveryError):
    pass


class RateLimitedError(TransientError):
    def __init__(self, reason: str, *, retry_after_s: float) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


class PermanentError(DeliveryError):
    pass


class BlockedError(PermanentError):
    pass


class UncertainError(DeliveryError):
    pass
