"""Rendering emails from Jinja2 templates: a text part and an HTML part (autoescaped).

Every kind has ``templates/<kind>.txt.j2`` and ``templates/<kind>.html.j2``,
extending ``_base`` layouts that carry the city's name, contact block and
business hours. Subjects come from `domain.kinds` and are rendered without
escaping (they are a header, not HTML), then stripped of line breaks so that
no value can inject a header.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import email.utils
import functools
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from services.notifications.domain.kinds import KINDS
from services.notifications.settings import City

TEMPLATES = Path(__file__).resolve().parent / "templates"
SUBJECT_MAX = 200


@dataclasses.dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def money(value: Any) -> str:
    """'127.1' -> '$127.10'; never through float."""
    try:
        amount = decimal.Decimal(str(value)).quantize(decimal.Decimal("0.01"))
    except (decimal.InvalidOperation, ValueError):
        return str(value)
    sign = "-" if amount < 0 else ""
    return f"{sign}${abs(amount):,.2f}"


def longdate(value: Any) -> str:
    """'2017-01-23' -> 'January 23, 2017'."""
    try:
        day = value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return str(value)
    return f"{day:%B} {day.day}, {day.year}"


def longdatetime(value: Any, timezone: str = "UTC") -> str:
    """An ISO timestamp in the city's time zone: 'January 23, 2017 at 3:05 pm PST'."""
    try:
        when = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    try:
        when = when.astimezone(ZoneInfo(timezone))
    except (ZoneInfoNotFoundError, ValueError):
        when = when.astimezone(dt.UTC)
    hour = when.hour % 12 or 12
    return (
        f"{when:%B} {when.day}, {when.year} at {hour}:{when:%M} "
        f"{'am' if when.hour < 12 else 'pm'} {when.tzname()}"
    )


def mask_email(address: str) -> str:
    """'ana.lopez@example.org' -> 'a***@example.org': enough to recognise, not to harvest."""
    local, at, domain = (address or "").partition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"


def _filters(env: jinja2.Environment) -> jinja2.Environment:
    env.filters.update(money=money, longdate=longdate, longdatetime=longdatetime)
    return env


@functools.cache
def _bodies() -> jinja2.Environment:
    return _filters(
        jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(TEMPLATES)),
            autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",)),
            keep_trailing_newline=True,
            trim_blocks=False,
        )
    )


@functools.cache
def _subjects() -> jinja2.Environment:
    return _filters(SandboxedEnvironment(autoescape=False))


class TemplateProblem(Exception):
    """A template could not be rendered (a bug, not a delivery problem)."""


def render(
    kind: str, context: dict[str, Any], city: City, *, to: str = "", secret_url: str | None = None
) -> Rendered:
    """Subject, text and HTML of one email; `secret_url` becomes its action link."""
    spec = KINDS[kind]
    values = {"action_label": spec.action, **context, "city": city.as_context(), "to": to}
    if secret_url is not None:
        values["action_url"] = secret_url
    try:
        subject = render_subject(kind, context, city)
        values["subject"] = subject
        text = _bodies().get_template(f"{kind}.txt.j2").render(values)
        html = _bodies().get_template(f"{kind}.html.j2").render(values)
    except jinja2.TemplateError as exc:
        # Never the values: they may hold a secret link.
        raise TemplateProblem(f"template {kind} failed: {type(exc).__name__}") from None
    if spec.secure and secret_url is None:
        raise TemplateProblem(f"{kind} needs its secret link")
    return Rendered(subject=subject, text=_tidy(text), html=html)


def render_subject(kind: str, context: dict[str, Any], city: City) -> str:
    template = _subjects().from_string(KINDS[kind].subject)
    subject = template.render({**context, "city": city.as_context()})
    subject = " ".join(subject.split())
    return subject[:SUBJECT_MAX]


def _tidy(text: str) -> str:
    """Collapse runs of blank lines that template blocks leave behind."""
    lines = [line.rstrip() for line in text.splitlines()]
    out: list[str] = []
    for line in lines:
        if not line and out and not out[-1]:
            continue
        out.append(line)
    return "\n".join(out).strip() + "\n"


def build_email(
    rendered: Rendered,
    *,
    message_id: str,
    to: str,
    city: City,
    now: dt.datetime,
    preferences_url: str | None = None,
) -> EmailMessage:
    """A multipart/alternative message (text first, then HTML) from the city's sender."""
    msg = EmailMessage()
    msg["From"] = city.sender
    msg["To"] = to
    if city.reply_to:
        msg["Reply-To"] = city.reply_to
    msg["Subject"] = rendered.subject
    msg["Date"] = email.utils.format_datetime(now)
    # Stable per message: a receiving system can tell a rare repeat after a crash.
    msg["Message-ID"] = f"<{message_id}@{city.sender_domain}>"
    msg["Auto-Submitted"] = "auto-generated"
    if preferences_url:
        # RFC 2369: mail clients offer "unsubscribe"; it leads to the account's preferences.
        msg["List-Unsubscribe"] = f"<{preferences_url}>"
    msg.set_content(rendered.text)
    msg.add_alternative(rendered.html, subtype="html")
    return msg
