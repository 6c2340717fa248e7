"""The stub upstream, once per module (``stub``), reset between tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _llm_stub import Stub, run_stub


@pytest.fixture(scope="module")
def stub_server() -> Iterator[Stub]:
    with run_stub() as stub:
        yield stub


@pytest.fixture
def stub(stub_server: Stub) -> Stub:
    stub_server.reset()
    return stub_server
