"""The inference core's error table and request ids (REST and gRPC go through both)."""

from __future__ import annotations

import logging
import os
import re

import pytest

from loopwright.errors import (
    ConfigError,
    InvalidInput,
    LimitExceeded,
    ModelFailed,
    NotFound,
    Overloaded,
    PermissionDenied,
    RequestTooLarge,
)
from loopwright.serving.core import Problem, new_request_id, problem
from loopwright.serving.metrics import GRPC_AS_HTTP


@pytest.mark.parametrize(
    ("error", "status", "code", "grpc"),
    [
        (NotFound("model 'churn' is not served here"), 404, "RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"),
        (RequestTooLarge("body too large"), 413, "REQUEST_TOO_LARGE", "RESOURCE_EXHAUSTED"),
        (LimitExceeded("too many rows"), 400, "BAD_REQUEST", "INVALID_ARGUMENT"),
        (InvalidInput("column 'age' is missing"), 400, "BAD_REQUEST", "INVALID_ARGUMENT"),
        (PermissionDenied("untrusted"), 403, "PERMISSION_DENIED", "PERMISSION_DENIED"),
        (Overloaded("queue full"), 503, "TEMPORARILY_UNAVAILABLE", "UNAVAILABLE"),
    ],
)
def test_a_client_error_has_one_status_code_and_grpc_code(
    error: Exception, status: int, code: str, grpc: str
) -> None:
    answer = problem(error, "r1")
    assert (answer.status, answer.code, answer.grpc) == (status, code, grpc)
    assert answer.message == str(error) and "r1" not in answer.message
    assert answer.retry is isinstance(error, Overloaded)
    # The gRPC metrics count a code as the status REST gives the same error.
    assert GRPC_AS_HTTP[answer.grpc] == status


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ModelFailed("the model raised ValueError"), "MODEL_FAILED"),
        (ConfigError("no blob store"), "INVALID_CONFIG"),
        (ZeroDivisionError("division by zero"), "INTERNAL_ERROR"),
    ],
)
def test_a_server_error_is_internal_names_the_request_and_is_logged(
    error: Exception, code: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        answer = problem(error, "req-77")
    assert (answer.status, answer.code, answer.grpc) == (500, code, "INTERNAL")
    assert "(request id req-77)" in answer.message and not answer.retry
    assert any("req-77" in record.getMessage() for record in caplog.records)
    if isinstance(error, ZeroDivisionError):
        assert "ZeroDivisionError" in answer.message and "server log" in answer.message


def test_a_problem_raised_by_a_protocol_passes_through_with_its_grpc_code() -> None:
    unsupported = Problem(415, "content type 'text/xml' is not supported", "BAD_REQUEST")
    assert problem(unsupported, "r") is unsupported
    assert unsupported.grpc == "INTERNAL"  # no gRPC call can be refused for its content type
    assert Problem(400, "not ready", "RESOURCE_DOES_NOT_EXIST").grpc == "INVALID_ARGUMENT"


def test_request_ids_are_32_hex_digits_and_unique() -> None:
    ids = [new_request_id() for _ in range(10_000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", request_id) for request_id in ids)
    assert len(set(ids)) == len(ids)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")  # 3.12+: threads may run
def test_a_forked_worker_draws_ids_of_its_own() -> None:
    """Forked after the parent drew ids, a child would repeat them with the same counter."""
    parent = new_request_id()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id and leave without running pytest's exit
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    following = new_request_id()
    assert re.fullmatch(r"[0-9a-f]{32}", child)
    assert child[:16] != parent[:16] and child != following
