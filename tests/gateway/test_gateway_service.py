"""The control plane on SQLite and PostgreSQL: encrypted secrets and their key, audited route
changes, batched usage rows and their sums."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from loopwright._ids import new_id
from loopwright.config import resolve_settings
from loopwright.errors import ConfigError, InvalidInput
from loopwright.gateway._crypto import KEY_ENV
from loopwright.gateway._usage import UsageStats, UsageWriter
from loopwright.gateway.entities import UsageRecord
from loopwright.gateway.service import GatewayService
from loopwright.store.home import Store, open_store

VALUE = "sk-live-0123456789abcdefghijklmn"
TARGET = {"name": "primary", "base_url": "http://127.0.0.1:9/v1", "model": "m", "secret": "k"}


@pytest.fixture
def store(tmp_path: Path, db_uri: str) -> Iterator[Store]:
    with open_store(resolve_settings(home=tmp_path / "home", db_uri=db_uri, user="ada")) as s:
        yield s


def test_secrets_are_encrypted_at_rest_with_a_private_key_file(store: Store) -> None:
    gateway = GatewayService(store)
    assert gateway.set_secret("k", VALUE).mask == "****klmn"
    with store.db.read() as conn:
        stored = conn.execute(sa.text("SELECT ciphertext, mask FROM gateway_secrets")).one()
        events = " ".join(r[0] for r in conn.execute(sa.text(
            "SELECT action || ' ' || coalesce(after_json, '') FROM audit_events")))  # fmt: skip
    assert VALUE not in stored.ciphertext and VALUE not in events
    assert "gateway.secret.set" in events and "****klmn" in events
    key = store.settings.home / "secret.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert gateway._secret_values(["k"]) == {"k": VALUE}
    gateway.set_secret("short", "abc")
    assert {s.name: s.mask for s in gateway.list_secrets()} == {"k": "****klmn", "short": "****"}


def test_a_readable_key_file_or_a_wrong_key_is_refused(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    GatewayService(store).set_secret("k", VALUE)
    key = store.settings.home / "secret.key"
    os.chmod(key, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        GatewayService(store)._secret_values(["k"])
    os.chmod(key, 0o600)
    from cryptography.fernet import Fernet

    monkeypatch.setenv(KEY_ENV, Fernet.generate_key().decode())
    with pytest.raises(InvalidInput, match="does not decrypt with this server's key"):
        GatewayService(store)._secret_values(["k"])
    monkeypatch.setenv(KEY_ENV, "not-a-key")
    with pytest.raises(ConfigError, match="is not a Fernet key"):
        GatewayService(store).set_secret("x", VALUE)


def test_route_changes_are_audited_and_secrets_in_use_stay(store: Store) -> None:
    gateway = GatewayService(store)
    gateway.set_secret("k", VALUE)
    gateway.create_route("chat", {"targets": [TARGET]})
    gateway.update_route("chat", {"targets": [TARGET], "retries": 0})
    with pytest.raises(Exception, match="used by gateway route"):
        gateway.delete_secret("k")
    gateway.delete_route("chat")
    gateway.delete_secret("k")
    with store.db.read() as conn:
        actions = conn.execute(
            sa.text("SELECT action, actor FROM audit_events WHERE subject_type LIKE 'gateway%' "
                    "ORDER BY seq")
        ).all()  # fmt: skip
    assert [a for a, _ in actions] == [
        "gateway.secret.set", "gateway.route.create", "gateway.route.update",
        "gateway.route.delete", "gateway.secret.delete",
    ]  # fmt: skip
    assert {actor for _, actor in actions} == {"ada"}


def _record(route: str, user: str, status: int = 200, tokens: int = 10) -> UsageRecord:
    return UsageRecord(new_id(), route, "primary", user, "chat", status, tokens, tokens // 2,
                       status == 299, 0.001, 12.5, False, None, 1_000)  # fmt: skip


def test_usage_is_written_in_batches_and_summed(store: Store) -> None:
    gateway = GatewayService(store)
    batches: list[int] = []

    def write(rows: list[UsageRecord]) -> None:
        batches.append(len(rows))
        gateway._record_usage(rows)

    writer = UsageWriter(write, interval=10.0, batch=4)  # type: ignore[arg-type]
    for i in range(10):
        writer.submit(_record("chat", "ada" if i % 2 else "bob", status=500 if i == 0 else 200))
    assert writer.flush(10.0)
    writer.close()
    assert sum(batches) == 10 and max(batches) <= 4
    assert writer.stats.written == 10 and writer.stats.dropped == 0
    rows = gateway.usage(group_by=["user"])
    assert [(r.user, r.requests, r.prompt_tokens, r.completion_tokens, r.errors) for r in rows] == [
        ("ada", 5, 50, 25, 0), ("bob", 5, 50, 25, 1),
    ]  # fmt: skip
    assert gateway.usage(route="chat", user="ada", group_by=[])[0].cost_usd == pytest.approx(0.005)
    assert gateway.usage(since_ms=2_000) == []
    tokens, cost = gateway._day_totals("chat", "bob", 0)
    assert tokens == 75 and cost == pytest.approx(0.005)
    with pytest.raises(InvalidInput, match="group_by"):
        gateway.usage(group_by=["model"])


def test_a_failing_sink_is_retried_then_counted() -> None:
    calls: list[int] = []

    def broken(rows: list[UsageRecord]) -> None:
        calls.append(len(rows))
        raise RuntimeError("database down")

    writer = UsageWriter(broken, interval=0.01, attempts=2)  # type: ignore[arg-type]
    writer.submit(_record("chat", "ada"))
    assert writer.flush(5.0)
    writer.close()
    assert len(calls) == 2 and writer.stats.failed == 1 and writer.stats.written == 0
    full = UsageWriter(broken, interval=10.0, max_queue=1)  # type: ignore[arg-type]
    assert full.submit(_record("chat", "ada")) and not full.submit(_record("chat", "ada"))
    assert full.stats.dropped == 1
    started = time.monotonic()
    full.close()  # five attempts at once, not one a round: the thread ends with the close
    assert time.monotonic() - started < 5.0 and not full._thread.is_alive()
    assert full.stats == UsageStats(queued=0, written=0, dropped=1, failed=1)
