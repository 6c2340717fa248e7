"""Sending alert events to a webhook: a JSON body as is, or a Slack-compatible message.

:func:`deliver` never raises: a monitoring run must not fail because a receiver is down, so
what happened (status, attempts, error) is returned for the caller to record. Connection errors,
timeouts and 5xx answers are retried with exponential backoff; 4xx answers are not (the request
itself is wrong and would be refused again). Redirects are not followed, and the URL is kept out
of the recorded error: webhook URLs (Slack's) are secrets.

Example:
    >>> deliver("ftp://example.com/hook", {"event": "opened"})["error"]
    "webhook URL scheme 'ftp' is refused: use http:// or https://"
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

from ..errors import InvalidInput

__all__ = ["check_url", "deliver", "slack_message"]

_BODY_KEPT = 300  # characters of a refusing receiver's answer kept for the record


def check_url(url: object) -> str:
    """``url`` if it is an absolute http(s) URL with a host; InvalidInput saying why not."""
    if not isinstance(url, str) or not url:
        raise InvalidInput(f"webhook URL {url!r} is not a non-empty string")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise InvalidInput(
            f"webhook URL scheme {parts.scheme or 'none'!r} is refused: use http:// or https://"
        )
    if not parts.hostname:
        raise InvalidInput("webhook URL has no host: write it as https://HOST/PATH")
    return url


def deliver(
    url: str,
    payload: Mapping[str, Any],
    *,
    format: Literal["json", "slack"] = "json",
    timeout: float = 5.0,
    attempts: int = 3,
    backoff: float = 0.5,
) -> dict[str, Any]:
    """POST ``payload`` to ``url``; returns ``ok``, ``status`` (the last HTTP status, None when
    no answer came), ``attempts`` made and ``error`` (None on success).

    Args:
        url: an http(s) URL (anything else is refused without a request).
        payload: the alert event (see ``_alerts.alert_payload``).
        format: ``json`` sends ``payload``; ``slack`` sends :func:`slack_message` of it.
        timeout: seconds per attempt.
        attempts: tries at most, on connection errors, timeouts and 5xx.
        backoff: seconds before the second try, doubled before each next one.
    """
    try:
        check_url(url)
        if format not in ("json", "slack"):
            raise InvalidInput(f"webhook format {format!r} is not 'json' or 'slack'")
    except InvalidInput as exc:
        return {"ok": False, "status": None, "attempts": 0, "error": str(exc)}
    try:
        import httpx
    except ImportError:
        return {
            "ok": False,
            "status": None,
            "attempts": 0,
            "error": "httpx is not installed: pip install 'loopwright[server]' to send webhooks",
        }
    body = slack_message(payload) if format == "slack" else dict(payload)
    status: int | None = None
    error: str | None = None
    made = 0
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        for made in range(1, max(1, attempts) + 1):
            if made > 1:
                time.sleep(backoff * 2 ** (made - 2))
            try:
                response = client.post(url, json=body)
            except httpx.HTTPError as exc:
                status, error = None, f"{type(exc).__name__}: {str(exc).replace(url, '<webhook>')}"
                continue
            status = response.status_code
            if 200 <= status < 300:
                return {"ok": True, "status": status, "attempts": made, "error": None}
            error = f"the webhook answered {status}: {response.text[:_BODY_KEPT]}"
            if status < 500:
                break
    return {"ok": False, "status": status, "attempts": made, "error": error}


def slack_message(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A Slack (and Mattermost, Teams-workflow) incoming-webhook message for an alert event:
    ``text`` for notifications and ``blocks`` for the channel."""
    event = str(payload.get("event", "event"))
    icon = ":white_check_mark:" if event == "resolved" else ":rotating_light:"
    monitor = _escape(payload.get("monitor"))
    deployment = _escape(payload.get("deployment"))
    rule = _escape(payload.get("rule"))
    message = _escape(payload.get("message"))
    text = f"{icon} Alert {event}: `{rule}` on monitor {monitor} (deployment {deployment})"
    facts = [
        f"*Value:* {_number(payload.get('value'))}",
        f"*Threshold:* {_number(payload.get('threshold'))}",
        f"*Occurrences:* {_escape(payload.get('occurrences'))}",
        f"*Run:* `{_escape(payload.get('run_id'))}`",
    ]
    return {
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"{text}\n{message}"}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in facts]},
            {
                "type": "context",
                "elements": [
                    {"type": "mrkdwn", "text": f"alert `{_escape(payload.get('alert_id'))}`"}
                ],
            },
        ],
    }


def _escape(value: object) -> str:
    # Slack reads <...> as links and mentions (<!channel>): names from users must stay text.
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _number(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, int | float) else "n/a"
