"""Monitors' settings checked at the edge, and stored rows read back as :class:`Monitor`.

Every check raises :class:`~loopwright.errors.InvalidInput` naming the field and the fix.
Tests and threshold keys are checked against the drift-test registry (``monitoring.stats``).
"""

from __future__ import annotations

import builtins
import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from ..errors import AlreadyExists, InvalidInput
from ..store import limits
from ._window import INPUT, OUTPUT, span_ms
from .entities import AlertRule, Monitor

MAX_WINDOW = timedelta(days=366)
MAX_EVERY = timedelta(days=366)
TASKS = ("classification", "regression")
_NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{limits.MONITOR_NAME - 1}}}")
_DEPLOYMENT = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{limits.DEPLOYMENT_NAME - 1}}}")
_URL_LIMIT = 2000


def check_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput(
            f"monitor name {str(name)[:80]!r} must be 1-{limits.MONITOR_NAME} letters, digits, "
            "'.', '_' or '-', starting with a letter or digit (e.g. 'churn-drift')"
        )
    return name


def check_deployment(name: object) -> str:
    if not isinstance(name, str) or not _DEPLOYMENT.fullmatch(name):
        raise InvalidInput(
            f"deployment name {str(name)[:80]!r} must be 1-{limits.DEPLOYMENT_NAME} letters, "
            "digits, '.', '_' or '-', starting with a letter or digit (e.g. 'churn-api')"
        )
    return name


def seconds(what: str, value: object, most: timedelta) -> int:
    if not isinstance(value, timedelta):
        raise InvalidInput(
            f"{what} {value!r} must be a timedelta (e.g. timedelta(minutes=15)); the CLI takes "
            "15m, 1h, 1d"
        )
    seconds = value.total_seconds()
    if not 1 <= seconds <= most.total_seconds() or seconds != int(seconds):
        raise InvalidInput(
            f"{what} {value} must be a whole number of seconds from 1 s to {most.days} days"
        )
    return int(seconds)


def known_tests() -> builtins.list[str]:
    from .stats import TESTS

    return sorted(TESTS)


def check_tests(tests: object) -> builtins.list[str]:
    if isinstance(tests, str) or not isinstance(tests, Sequence):
        raise InvalidInput(f"tests {tests!r} must be a list of test names, e.g. ['psi', 'ks']")
    if not tests:
        return []
    known = known_tests()
    unknown = [name for name in tests if name not in known]
    if unknown:
        raise InvalidInput(f"unknown test(s) {unknown}; tests: {', '.join(known)}")
    return builtins.list(dict.fromkeys(tests))


def check_columns(columns: object) -> builtins.list[str]:
    if isinstance(columns, str) or not isinstance(columns, Sequence):
        raise InvalidInput(
            f"columns {columns!r} must be a list of the log's columns, e.g. "
            "['input.age', 'output.predict']"
        )
    bad = [
        c
        for c in columns
        if not isinstance(c, str)
        or not c.startswith((INPUT, OUTPUT))
        or c in (INPUT, OUTPUT)
        or len(c) > limits.KEY
    ]
    if bad:
        raise InvalidInput(
            f"column(s) {[str(c)[:80] for c in bad]} are not the prediction log's feature or "
            f"output columns: name them 'input.<feature>' or 'output.<name>' (at most "
            f"{limits.KEY} characters)"
        )
    return builtins.list(dict.fromkeys(columns))


def check_thresholds(thresholds: object) -> dict[str, float]:
    if thresholds is None:
        return {}
    if not isinstance(thresholds, Mapping):
        raise InvalidInput(
            f"thresholds {thresholds!r} must map TEST or TEST:COLUMN to a number, e.g. "
            "{'psi': 0.2, 'ks:input.age': 0.1}"
        )
    if not thresholds:
        return {}
    known = known_tests()
    checked: dict[str, float] = {}
    for key, value in thresholds.items():
        test = key.partition(":")[0] if isinstance(key, str) else None
        column = key.partition(":")[2] if isinstance(key, str) else ""
        if test not in known or (":" in key and not column.startswith((INPUT, OUTPUT))):
            raise InvalidInput(
                f"threshold key {str(key)[:80]!r} must be TEST or TEST:COLUMN (e.g. 'psi' or "
                f"'psi:input.age'); tests: {', '.join(known)}"
            )
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInput(f"threshold {key!r}: {value!r} is not a number")
        if not math.isfinite(value):
            raise InvalidInput(f"threshold {key!r} must be a finite number, not {value}")
        checked[key] = float(value)
    return checked


def check_alerts(alerts: object) -> builtins.list[AlertRule]:
    if isinstance(alerts, str) or not isinstance(alerts, Sequence):
        raise InvalidInput(
            f"alerts {alerts!r} must be a list of rules, e.g. ['drift_share>0.3', 'accuracy<0.8']"
        )
    rules = [AlertRule.parse(text) for text in alerts]
    return builtins.list({rule.key: rule for rule in rules}.values())


def check_webhook(url: object) -> str | None:
    if url is None:
        return None
    parts = urlsplit(url) if isinstance(url, str) else None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or len(url) > _URL_LIMIT  # type: ignore[arg-type]
    ):
        raise InvalidInput(
            f"webhook {str(url)[:100]!r} must be an http(s) URL of at most {_URL_LIMIT} "
            "characters, e.g. 'https://hooks.example.com/loopwright'"
        )
    if parts.username is not None or parts.password is not None:
        # The URL is stored and shown by `monitors show`: a password in it would leak (and
        # is not echoed here for the same reason).
        raise InvalidInput(
            "webhook URL must not carry user:password@ (it is stored and shown in plain text); "
            "use a receiver URL with a secret path or token, e.g. 'https://hooks.example.com/T0K3N'"
        )
    return str(url)


def check_choice(what: str, value: object, choices: Sequence[str]) -> Any:
    if value not in choices:
        raise InvalidInput(f"{what} {value!r} must be one of: {', '.join(choices)}")
    return value


def ms_of(moment: object) -> int:
    if not isinstance(moment, datetime):
        raise InvalidInput(f"at/since {moment!r} must be a datetime (a naive one is taken as UTC)")
    start, _ = span_ms(moment, None, 0)
    assert start is not None
    return start


def monitor(row: Any) -> Monitor:
    spec = json.loads(row.spec_json)
    return Monitor(
        id=row.id,
        name=row.name,
        deployment=row.deployment,
        reference=row.reference_spec,
        reference_id=row.reference_id,
        window_s=int(spec["window_s"]),
        every_s=spec.get("every_s"),
        tests=tuple(spec.get("tests") or ()),
        columns=tuple(spec.get("columns") or ()),
        thresholds=dict(spec.get("thresholds") or {}),
        alerts=tuple(AlertRule.parse(text) for text in spec.get("alerts") or ()),
        webhook=spec.get("webhook"),
        webhook_format=spec.get("webhook_format") or "json",
        task=spec.get("task"),
        description=row.description,
        created_by=row.created_by,
        created_at=int(row.created_at),
        updated_at=int(row.updated_at),
        last_run_at=row.last_run_at,
    )


def snapshot(row: Any) -> dict[str, Any]:
    return {
        "name": row.name,
        "deployment": row.deployment,
        "reference": row.reference_spec,
        "spec": json.loads(row.spec_json),
    }


def exists(name: str) -> AlreadyExists:
    return AlreadyExists(f"monitor {name!r} already exists; delete it first or pick another name")
