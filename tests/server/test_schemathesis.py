"""Property-based fuzzing of every operation in the server's OpenAPI document: no 5xx.

Schemathesis generates requests from the document (valid and invalid bodies, odd strings,
huge numbers) and sends them to the app in process. Auth is off, so every operation is
reached as admin.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("schemathesis")
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from loopwright.config import resolve_settings
from loopwright.server.app import create_app

_HOME = Path(tempfile.mkdtemp(prefix="lw-schemathesis-")) / "home"
APP = create_app(resolve_settings(home=_HOME), auth=False)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_operation_answers_with_a_server_error(case: schemathesis.Case[Any]) -> None:
    case.call_and_validate(checks=[not_a_server_error])
