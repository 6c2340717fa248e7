"""Webhook delivery against real receivers on 127.0.0.1: retries, refusals, Slack's format."""

from __future__ import annotations

from typing import Any

import pytest
from _receiver import dead_url, receiving

from loopwright.errors import InvalidInput
from loopwright.monitoring.webhooks import check_url, deliver, slack_message

PAYLOAD: dict[str, Any] = {
    "event": "opened",
    "alert_id": "a1",
    "monitor": "churn-drift",
    "deployment": "churn-api",
    "rule": "psi:input.age>0.2",
    "value": 0.3141,
    "threshold": 0.2,
    "message": "psi:input.age is 0.3141 (> 0.2)",
    "occurrences": 1,
    "run_id": "r1",
}


def test_json_payload_is_posted_as_is() -> None:
    with receiving() as receiver:
        outcome = deliver(receiver.url, PAYLOAD)
    assert outcome == {"ok": True, "status": 200, "attempts": 1, "error": None}
    assert receiver.bodies == [PAYLOAD]


def test_a_5xx_is_retried_until_the_receiver_accepts() -> None:
    with receiving(statuses=[500, 503]) as receiver:
        outcome = deliver(receiver.url, PAYLOAD, attempts=3, backoff=0.01)
    assert outcome == {"ok": True, "status": 200, "attempts": 3, "error": None}
    assert receiver.bodies == [PAYLOAD] * 3


def test_a_persistent_5xx_gives_up_after_the_attempts() -> None:
    with receiving(statuses=[500, 500, 500, 500]) as receiver:
        outcome = deliver(receiver.url, PAYLOAD, attempts=2, backoff=0.01)
    assert outcome["ok"] is False and outcome["status"] == 500 and outcome["attempts"] == 2
    assert "answered 500: no thanks" in outcome["error"]
    assert receiver.requests == 2


def test_a_4xx_is_not_retried() -> None:
    with receiving(statuses=[400]) as receiver:
        outcome = deliver(receiver.url, PAYLOAD, attempts=3, backoff=0.01)
    assert outcome["ok"] is False and outcome["status"] == 400 and outcome["attempts"] == 1
    assert receiver.requests == 1


def test_a_dead_webhook_is_reported_not_raised() -> None:
    url = dead_url()
    outcome = deliver(url, PAYLOAD, attempts=2, backoff=0.01)
    assert outcome["ok"] is False and outcome["status"] is None and outcome["attempts"] == 2
    assert outcome["error"].startswith("ConnectError")
    assert url not in outcome["error"]  # webhook URLs are secrets


def test_a_slow_webhook_times_out_and_is_reported() -> None:
    with receiving(delay=1.0) as receiver:
        outcome = deliver(receiver.url, PAYLOAD, timeout=0.2, attempts=1)
    assert outcome["ok"] is False and outcome["status"] is None
    assert "Timeout" in outcome["error"]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/hook", "scheme 'ftp' is refused"),
        ("file:///etc/passwd", "scheme 'file' is refused"),
        ("example.com/hook", "scheme 'none' is refused"),
        ("http:///hook", "has no host"),
        ("", "not a non-empty string"),
    ],
)
def test_non_http_urls_are_refused_without_a_request(url: str, reason: str) -> None:
    outcome = deliver(url, PAYLOAD)
    assert outcome["ok"] is False and outcome["attempts"] == 0
    assert reason in outcome["error"]
    with pytest.raises(InvalidInput, match=reason):
        check_url(url)


def test_an_unknown_format_is_refused_without_a_request() -> None:
    with receiving() as receiver:
        outcome = deliver(receiver.url, PAYLOAD, format="xml")  # type: ignore[arg-type]
    assert outcome["attempts"] == 0 and "format 'xml'" in outcome["error"]
    assert receiver.requests == 0


def test_slack_format_sends_text_and_blocks() -> None:
    with receiving() as receiver:
        outcome = deliver(receiver.url, PAYLOAD, format="slack")
    assert outcome["ok"] is True
    (body,) = receiver.bodies
    assert set(body) == {"text", "blocks"}
    assert body["text"] == (
        ":rotating_light: Alert opened: `psi:input.age&gt;0.2` on monitor churn-drift "
        "(deployment churn-api)"
    )
    assert [block["type"] for block in body["blocks"]] == ["section", "section", "context"]
    fields = [f["text"] for f in body["blocks"][1]["fields"]]
    assert fields == ["*Value:* 0.3141", "*Threshold:* 0.2", "*Occurrences:* 1", "*Run:* `r1`"]


def test_slack_message_keeps_user_names_as_text() -> None:
    message = slack_message({**PAYLOAD, "event": "resolved", "monitor": "<!channel> & co"})
    assert message["text"].startswith(":white_check_mark: Alert resolved")
    assert "&lt;!channel&gt; &amp; co" in message["text"]
    assert "<!channel>" not in str(message)


def test_slack_message_without_a_value() -> None:
    message = slack_message({**PAYLOAD, "value": None})
    assert message["blocks"][1]["fields"][0]["text"] == "*Value:* n/a"
