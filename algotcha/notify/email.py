"""Email over SMTP (smtplib): STARTTLS on 587, TLS from the first byte on 465, plain for tests.

Failures become notify.errors by where they happened: before the message data was sent nothing
was delivered (4xx and lost connections are transient, 5xx permanent); a connection lost while
the server was taking the data leaves the outcome unknown.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate, make_msgid

from algotcha.notify.errors import PermanentError, TransientError, UncertainError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    sender: str
    tls: str = "starttls"  # starttls | tls | none
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout_s: float = 15.0


@dataclass(frozen=True)
class Email:
    to: str
    subject: str
    text: str
    html: str


def build(config: SmtpConfig, email: Email) -> EmailMessage:
    """multipart/alternative (text, then HTML) with From, To, Subject, Date and Message-ID."""
    message = EmailMessage()
    message["From"] = config.sender
    message["To"] = email.to
    # A header value may not hold a line break (header injection); subjects come from user text.
    message["Subject"] = " ".join(email.subject.split())
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=_domain(config.sender))
    message.set_content(email.text)
    message.add_alternative(email.html, subtype="html")
    return message


def _domain(address: str) -> str:
    domain = address.rpartition("@")[2].strip(" >")
    try:
        return domain.encode("idna").decode("ascii") if domain else "localhost"
    except UnicodeError:
        return "localhost"


class Mailer:
    """Sends one message per connection: the notifier's volume does not warrant a pool."""

    def __init__(self, config: SmtpConfig, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.config = config
        self.ssl_context = ssl_context or ssl.create_default_context()

    def send(self, email: Email) -> str:
        """Deliver to the server; returns the Message-ID."""
        message = build(self.config, email)
        try:
            smtp = self._connect()
            try:
                self._transmit(smtp, message, email.to)
            finally:
                _quit(smtp)
        except smtplib.SMTPResponseException as exc:
            raise _refusal(exc.smtp_code, exc.smtp_error, "") from None
        except smtplib.SMTPNotSupportedError as exc:
            raise PermanentError(f"the mail server does not support {exc}") from None
        except ssl.SSLCertVerificationError:
            raise PermanentError("the mail server's TLS certificate does not verify") from None
        except OSError as exc:
            # Refused, reset, timed out, TLS handshake failed: before the data, so not delivered.
            raise TransientError(f"cannot reach the mail server ({type(exc).__name__})") from None
        return str(message["Message-ID"])

    def _connect(self) -> smtplib.SMTP:
        c = self.config
        if c.tls == "tls":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                c.host, c.port, timeout=c.timeout_s, context=self.ssl_context
            )
        else:
            smtp = smtplib.SMTP(c.host, c.port, timeout=c.timeout_s)
        try:
            smtp.ehlo()
            if c.tls == "starttls":
                smtp.starttls(context=self.ssl_context)
                smtp.ehlo()
            if c.user and c.password:
                smtp.login(c.user, c.password)
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _transmit(self, smtp: smtplib.SMTP, message: EmailMessage, to: str) -> None:
        """MAIL, RCPT and DATA one by one, so a lost connection is placed before or after DATA."""
        sender = self.config.sender
        international = not (sender.isascii() and to.isascii())
        options: list[str] = []
        if international:
            if not smtp.has_extn("smtputf8"):
                raise PermanentError(
                    "the mail server does not accept international addresses (no SMTPUTF8)"
                )
            options = ["SMTPUTF8", "BODY=8BITMIME"]
        payload = message.as_bytes(policy=SMTP_POLICY.clone(utf8=international))
        code, reply = smtp.mail(sender, options)
        if code != 250:
            raise _refusal(code, reply, "MAIL FROM")
        code, reply = smtp.rcpt(to)
        if code not in (250, 251):
            raise _refusal(code, reply, "RCPT TO")
        try:
            code, reply = smtp.data(payload)
        except smtplib.SMTPDataError as exc:
            # DATA itself was refused (no 354): nothing of the message was sent.
            raise _refusal(exc.smtp_code, exc.smtp_error, "DATA") from None
        except OSError as exc:
            raise UncertainError(
                f"the connection was lost while the mail server took the message "
                f"({type(exc).__name__})"
            ) from None
        if code != 250:
            raise _refusal(code, reply, "end of data")


def _quit(smtp: smtplib.SMTP) -> None:
    """Say goodbye without letting a bad QUIT turn a delivered message into a failure."""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def _refusal(code: int, reply: bytes | str, step: str) -> PermanentError | TransientError:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    where = f" at {step}" if step else ""
    reason = f"SMTP {code}{where}: {' '.join(text.split())[:200]}"
    if 400 <= code < 500:
        return TransientError(reason)
    return PermanentError(reason)
