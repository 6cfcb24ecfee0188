"""The SMTP mailer against a real SMTP server (aiosmtpd) on loopback, plain and over TLS."""

from __future__ import annotations

import pytest

from algotcha.notify import email
from algotcha.notify.errors import PermanentError, TransientError, UncertainError
from tests.fixtures.app import free_port
from tests.fixtures.smtp import Certificate, SmtpServer

MESSAGE = email.Email(
    to="ann@example.com",
    subject="Backtest completed: SMA",
    text="Total return: +12.00 %\n",
    html="<p>Total return: <b>+12.00 %</b></p>",
)


def config(port: int, **changes: object) -> email.SmtpConfig:
    options: dict[str, object] = {
        "host": "127.0.0.1",
        "port": port,
        "sender": "Algotcha <alerts@algotcha.test>",
        "tls": "none",
        "timeout_s": 5.0,
    }
    options.update(changes)
    return email.SmtpConfig(**options)  # type: ignore[arg-type]


def test_a_message_has_both_parts_and_proper_headers(smtp_server: SmtpServer) -> None:
    message_id = email.Mailer(config(smtp_server.port)).send(MESSAGE)

    [received] = smtp_server.received
    assert received.sender == "alerts@algotcha.test"
    assert received.recipients == ["ann@example.com"]
    message = received.message
    assert message["Message-ID"] == message_id
    assert message_id.startswith("<") and message_id.endswith("@algotcha.test>")
    assert message["Date"] and message["From"] == "Algotcha <alerts@algotcha.test>"
    assert message["Subject"] == "Backtest completed: SMA"
    assert message.get_content_type() == "multipart/alternative"
    plain, rich = message.iter_parts()
    assert plain.get_content_type() == "text/plain" and "+12.00 %" in plain.get_content()
    assert rich.get_content_type() == "text/html" and "<b>+12.00 %</b>" in rich.get_content()
    assert all(len(line) < 998 for line in received.raw.split(b"\r\n"))


def test_a_subject_cannot_inject_headers(smtp_server: SmtpServer) -> None:
    sneaky = email.Email("ann@example.com", "hi\r\nBcc: eve@example.com", "x", "<p>x</p>")
    email.Mailer(config(smtp_server.port)).send(sneaky)
    [received] = smtp_server.received
    assert received.message["Bcc"] is None
    assert received.recipients == ["ann@example.com"]
    assert received.message["Subject"] == "hi Bcc: eve@example.com"


def test_an_international_address_goes_out_with_smtputf8(smtp_server: SmtpServer) -> None:
    to = "jürgen@bücher.example"
    email.Mailer(config(smtp_server.port)).send(
        email.Email(to, "Größe 🚀", "ä ö ü 🚀", "<p>ä 🚀</p>")
    )
    [received] = smtp_server.received
    assert received.recipients == [to]
    assert received.message["Subject"] == "Größe 🚀"


def test_a_server_without_smtputf8_refuses_an_international_address_for_good() -> None:
    server = SmtpServer(enable_SMTPUTF8=False).start()
    try:
        with pytest.raises(PermanentError, match="SMTPUTF8"):
            email.Mailer(config(server.port)).send(email.Email("jürgen@example.com", "x", "x", "x"))
    finally:
        server.stop()


def test_a_4xx_is_transient_and_a_5xx_permanent(smtp_server: SmtpServer) -> None:
    smtp_server.recorder.data_script += ["451 4.3.0 try again later", "554 5.7.1 rejected"]
    mailer = email.Mailer(config(smtp_server.port))
    with pytest.raises(TransientError, match="451"):
        mailer.send(MESSAGE)
    with pytest.raises(PermanentError, match="554"):
        mailer.send(MESSAGE)
    assert smtp_server.received == []


def test_no_server_is_transient() -> None:
    with pytest.raises(TransientError, match="cannot reach"):
        email.Mailer(config(free_port())).send(MESSAGE)


def test_a_connection_lost_after_the_data_is_uncertain(smtp_server: SmtpServer) -> None:
    smtp_server.recorder.data_script.append("drop")
    with pytest.raises(UncertainError):
        email.Mailer(config(smtp_server.port)).send(MESSAGE)


def test_a_wrong_password_is_permanent_and_never_shown(certificate: Certificate) -> None:
    server = SmtpServer(
        tls_context=certificate.server_context(),
        require_starttls=True,
        auth_require_tls=True,
        authenticator=lambda *args: _refuse(),
    ).start()
    try:
        settings = config(server.port, tls="starttls", user="alerts", password="hunter2-secret")
        mailer = email.Mailer(settings, ssl_context=certificate.client_context())
        with pytest.raises(PermanentError, match="535") as info:
            mailer.send(MESSAGE)
        assert "hunter2" not in str(info.value) and "hunter2" not in repr(settings)
    finally:
        server.stop()


def _refuse() -> object:
    from aiosmtpd.smtp import AuthResult

    # handled=False: aiosmtpd answers 535 itself
    return AuthResult(success=False, handled=False)


def test_starttls_then_login(certificate: Certificate) -> None:
    logins: list[tuple[str, str]] = []

    def authenticate(
        server: object, session: object, envelope: object, mechanism: str, auth: object
    ) -> object:
        from aiosmtpd.smtp import AuthResult, LoginPassword

        assert isinstance(auth, LoginPassword)
        logins.append((auth.login.decode(), auth.password.decode()))
        return AuthResult(success=True)

    server = SmtpServer(
        tls_context=certificate.server_context(),
        require_starttls=True,
        auth_require_tls=True,
        authenticator=authenticate,
    ).start()
    try:
        settings = config(server.port, tls="starttls", user="alerts", password="app-password")
        email.Mailer(settings, ssl_context=certificate.client_context()).send(MESSAGE)
    finally:
        server.stop()
    assert logins == [("alerts", "app-password")]
    assert len(server.received) == 1


def test_implicit_tls_as_on_port_465(certificate: Certificate) -> None:
    server = SmtpServer(ssl_context=certificate.server_context()).start()
    try:
        settings = config(server.port, tls="tls")
        email.Mailer(settings, ssl_context=certificate.client_context()).send(MESSAGE)
    finally:
        server.stop()
    assert len(server.received) == 1


def test_an_untrusted_certificate_is_permanent(certificate: Certificate) -> None:
    server = SmtpServer(ssl_context=certificate.server_context()).start()
    try:
        with pytest.raises(PermanentError, match="certificate"):
            email.Mailer(config(server.port, tls="tls")).send(MESSAGE)
    finally:
        server.stop()
