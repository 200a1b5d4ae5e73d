"""Delivering an alert: always the log, then a webhook (JSON POST) and mail (SMTP) when configured.

A target that is down, slow or refuses never raises: each delivery has a timeout, and a failure is one clear
log line (the webhook's path, which often holds a token, is never logged). Nothing is retried: the log keeps
the alert.
"""

import json
import logging
import smtplib
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import urlsplit

from customer_pipeline.alerts.messages import OPEN, Alert

DEFAULT_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    sender: str
    recipients: tuple[str, ...]
    port: int = 25
    starttls: bool = False
    user: str | None = None
    password: str | None = None


@dataclass(frozen=True)
class Targets:
    webhook_url: str | None = None
    smtp: SmtpTarget | None = None
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS

    def describe(self) -> str:
        parts = ["log"]
        if self.webhook_url:
            parts.append(f"webhook {where(self.webhook_url)}")
        if self.smtp:
            parts.append(f"mail via {self.smtp.host}:{self.smtp.port} to {', '.join(self.smtp.recipients)}")
        return ", ".join(parts)


@dataclass(frozen=True)
class Delivery:
    target: str        # webhook or smtp
    ok: bool
    detail: str


def where(url: str) -> str:
    """scheme://host[:port] of a URL: enough to say where, without the path's token."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}{f':{parts.port}' if parts.port else ''}"


def post_webhook(alert: Alert, url: str, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> Delivery:
    body = json.dumps(alert.payload(), default=str).encode()
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "customer-pipeline"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Delivery("webhook", True, f"{where(url)} answered {response.status}")
    except urllib.error.HTTPError as exc:
        return Delivery("webhook", False, f"{where(url)} answered {exc.code} {exc.reason}")
    except (OSError, ValueError) as exc:   # refused, timed out, DNS, TLS, a malformed URL
        return Delivery("webhook", False, f"{where(url)}: {type(exc).__name__}: {exc}")


def mail(alert: Alert, smtp: SmtpTarget) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = alert.subject
    msg["From"] = smtp.sender
    msg["To"] = ", ".join(smtp.recipients)
    msg["X-Customer-Pipeline-Incident"] = alert.key
    msg.set_content(alert.text + "\n")
    return msg


def send_mail(alert: Alert, smtp: SmtpTarget, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> Delivery:
    server = f"{smtp.host}:{smtp.port}"
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=timeout) as client:
            if smtp.starttls:
                client.starttls(context=ssl.create_default_context())
            if smtp.user:
                client.login(smtp.user, smtp.password or "")
            refused = client.send_message(mail(alert, smtp))
        if refused:
            return Delivery("smtp", False, f"{server} refused {', '.join(sorted(refused))}")
        return Delivery("smtp", True, f"{server} accepted it for {', '.join(smtp.recipients)}")
    except (OSError, smtplib.SMTPException, ValueError) as exc:
        return Delivery("smtp", False, f"{server}: {type(exc).__name__}: {exc}")


def deliver(alert: Alert, targets: Targets, log: logging.Logger | logging.LoggerAdapter) -> list[Delivery]:
    """Log the alert, then send it to every configured target; never raises."""
    (log.warning if alert.state == OPEN else log.info)(alert.text.replace("\n", " | "))
    results = []
    if targets.webhook_url:
        results.append(post_webhook(alert, targets.webhook_url, targets.timeout_seconds))
    if targets.smtp:
        results.append(send_mail(alert, targets.smtp, targets.timeout_seconds))
    for r in results:
        if r.ok:
            log.info(f"alert {alert.key} ({alert.state}) delivered by {r.target}: {r.detail}")
        else:
            log.error(f"alert {alert.key} ({alert.state}) NOT delivered by {r.target}: {r.detail}")
    return results
