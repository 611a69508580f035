"""GET /dev/mail: the local mailbox, rendered server-side (development only).

`make run` tells residents to read their emails here. The HTML part is shown only in
a sandboxed iframe (no scripts); links of the text part are made clickable.
"""

from __future__ import annotations

import html
import json
import urllib.request

from werkzeug.wrappers import Request, Response

from services.gateway.problems import Problem
from services.gateway.security import DEV_MAIL_CSP
from services.gateway.settings import Settings


def serve(request: Request, settings: Settings) -> Response:
    if settings.production or request.path.rstrip("/") != "/dev/mail":
        raise Problem(404, f"There is no page {request.path}.", code="route_not_found")
    if request.method not in ("GET", "HEAD"):
        raise Problem(405, "Only GET is allowed here.", headers={"Allow": "GET, HEAD"})
    try:
        with urllib.request.urlopen(f"{settings.mailbox_url}/messages?limit=50", timeout=3) as r:
            messages = json.loads(r.read())
        error = None
    except (OSError, ValueError) as exc:
        messages, error = (
            [],
            f"The local mailbox at {settings.mailbox_url} is not answering ({exc}).",
        )
    return Response(
        _page(messages, error),
        content_type="text/html; charset=utf-8",
        headers={"Cache-Control": "no-store", "Content-Security-Policy": DEV_MAIL_CSP},
    )


def _page(messages: list, error: str | None) -> str:
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        "<title>Local mailbox - muniportal (development)</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:1rem auto;"
        "padding:0 1rem;"
        "color:#1a1a1a}article{border:1px solid #888;border-radius:6px;padding:1rem;margin:1rem 0}"
        "pre{white-space:pre-wrap}iframe{width:100%;height:24rem;border:1px solid #ccc}"
        "a:focus{outline:3px solid #0b5fff}</style></head><body><main>",
        "<h1>Local mailbox</h1>",
        "<p>Emails the portal sent while running in development. Newest first.</p>",
    ]
    if error:
        parts.append(f"<p role='alert'>{html.escape(error)}</p>")
    if not messages and not error:
        parts.append("<p>No emails yet.</p>")
    for m in messages:
        text = html.escape(m.get("text") or "")
        for link in m.get("links") or []:
            escaped = html.escape(link)
            text = text.replace(escaped, f"<a href='{escaped}'>{escaped}</a>")
        parts.append("<article>")
        parts.append(f"<h2>{html.escape(m.get('subject') or '(no subject)')}</h2>")
        to, date = html.escape(str(m.get("to") or "")), html.escape(str(m.get("date") or ""))
        parts.append(f"<p>To: {to} &middot; {date}</p>")
        parts.append(f"<pre>{text}</pre>")
        if m.get("html"):
            srcdoc = html.escape(m["html"], quote=True)
            parts.append(
                "<details><summary>HTML version</summary>"
                f"<iframe sandbox title='HTML version' srcdoc=\"{srcdoc}\"></iframe></details>"
            )
        parts.append("</article>")
    parts.append("</main></body></html>")
    return "".join(parts)
