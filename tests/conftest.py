"""Shared fixtures: every store test runs on SQLite and PostgreSQL, local and S3 blobs.

Services come from the environment (``.ci/run`` and ``scripts/services.sh`` start them):

- ``LOOPWRIGHT_TEST_PG_URI``: a PostgreSQL server URL whose user may create databases
  (e.g. ``postgresql+psycopg://postgres@127.0.0.1:54329/postgres``);
- ``LOOPWRIGHT_TEST_S3_ENDPOINT``: an S3-compatible endpoint (e.g. ``http://127.0.0.1:55000``);
- ``LOOPWRIGHT_TEST_REDIS_URL``: a Redis server (e.g. ``redis://127.0.0.1:56379/0``).

When a service is absent its tests are skipped, unless ``LOOPWRIGHT_TEST_REQUIRE_SERVICES=1``
(set by CI), in which case they fail: CI must never pass by skipping. The same holds for every
other skip (an optional package a test imports with ``pytest.importorskip``, a platform check):
under that variable a skipped test or module is reported as a failure naming the skip's reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Generator, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest
from hypothesis import settings

# Hypothesis's per-example deadline is a timing assertion, and timings do not belong in the
# suite: on a shared 2-core machine it fails tests that are correct, only slow that once.
settings.register_profile("loopwright", deadline=None)
settings.load_profile("loopwright")

PG_URI = os.environ.get("LOOPWRIGHT_TEST_PG_URI", "")
S3_ENDPOINT = os.environ.get("LOOPWRIGHT_TEST_S3_ENDPOINT", "")
REDIS_URL = os.environ.get("LOOPWRIGHT_TEST_REDIS_URL", "")
REQUIRE_SERVICES = os.environ.get("LOOPWRIGHT_TEST_REQUIRE_SERVICES") == "1"
_NO_SKIPS = " [LOOPWRIGHT_TEST_REQUIRE_SERVICES=1 forbids skipping]"


def _fail_skip(report: pytest.TestReport | pytest.CollectReport) -> None:
    """Turn a skip into a failure that names it (CI runs every test or says why it could not)."""
    if REQUIRE_SERVICES and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped: {reason}{_NO_SKIPS}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report: pytest.TestReport = yield
    _fail_skip(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    report: pytest.CollectReport = yield
    _fail_skip(report)
    return report


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's own settings or home."""
    for name in list(os.environ):
        if name.startswith("LOOPWRIGHT_") and not name.startswith("LOOPWRIGHT_TEST_"):
            monkeypatch.delenv(name)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)


@pytest.fixture(autouse=True)
def _no_active_run_leaks() -> Iterator[None]:
    """A test that leaves a run active must not make the next test's start_run fail."""
    from loopwright import _active

    token = _active._stack.set(())
    yield
    _active._stack.reset(token)


def _missing(service: str, variable: str) -> None:
    message = f"{service} is not available: set {variable} (scripts/services.sh starts one)"
    if REQUIRE_SERVICES:
        pytest.fail(message + _NO_SKIPS)
    pytest.skip(message)


@pytest.fixture
def pg_uri() -> Iterator[str]:
    """URL of a fresh, empty PostgreSQL database, dropped after the test."""
    with fresh_pg_database() as url:
        yield url


@pytest.fixture(scope="session")
def pg_database() -> Callable[[], AbstractContextManager[str]]:
    """:func:`fresh_pg_database` for fixtures of a wider scope than a test (a module's server)."""
    return fresh_pg_database


@contextmanager
def fresh_pg_database() -> Iterator[str]:
    """URL of a fresh, empty PostgreSQL database, dropped when the block ends."""
    if not PG_URI:
        _missing("PostgreSQL", "LOOPWRIGHT_TEST_PG_URI")
    import sqlalchemy as sa

    name = f"lw_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URI, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.make_url(PG_URI).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def sqlite_uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store' / 'loopwright.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_uri(request: pytest.FixtureRequest) -> str:
    """Every metadata-store test runs once on SQLite and once on PostgreSQL."""
    fixture = "sqlite_uri" if request.param == "sqlite" else "pg_uri"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
def s3_blob_uri(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``s3://bucket/prefix`` in a fresh bucket of the test S3 server."""
    if not S3_ENDPOINT:
        _missing("An S3-compatible server", "LOOPWRIGHT_TEST_S3_ENDPOINT")
    import boto3
    import s3fs

    # s3fs keeps one filesystem per arguments: one an earlier test made without credentials
    # (a refused fetch) would otherwise answer this test.
    s3fs.S3FileSystem.clear_instance_cache()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", S3_ENDPOINT)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", S3_ENDPOINT)
    bucket = f"lw-test-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client("s3", endpoint_url=S3_ENDPOINT)
    s3.create_bucket(Bucket=bucket)
    yield f"s3://{bucket}/blobs"
    # Objects are left for the server's lifetime: buckets are unique per test.


@pytest.fixture
def local_blob_uri(tmp_path: Path) -> str:
    return str(tmp_path / "store" / "blobs")


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def blob_uri(request: pytest.FixtureRequest) -> str:
    """Every blob-store test runs once on a local folder and once on S3."""
    fixture = "local_blob_uri" if request.param == "local" else "s3_blob_uri"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
def redis_url() -> Iterator[str]:
    """``redis://host:port/db?prefix=<unique>:`` on the test Redis server: the online store
    keeps its keys under the prefix, so tests (and agents) sharing the server never see each
    other's keys; they are deleted after the test."""
    if not REDIS_URL:
        _missing("Redis", "LOOPWRIGHT_TEST_REDIS_URL")
    import redis

    prefix = f"lwtest-{uuid.uuid4().hex[:12]}:"
    separator = "&" if "?" in REDIS_URL else "?"
    client = redis.Redis.from_url(REDIS_URL)
    try:
        yield f"{REDIS_URL}{separator}prefix={prefix}"
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
