"""Named rows and audited services: a name's row, NotFound listing the names, audit events."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopwright.client import Client
from loopwright.config import resolve_settings
from loopwright.errors import NotFound
from loopwright.store import schema as t
from loopwright.store.audit import events
from loopwright.store.named import KNOWN_NAMES, Audited, named_row


def _client(tmp_path: Path, db_uri: str) -> Client:
    return Client(resolve_settings(home=tmp_path / "home", db_uri=db_uri))


def test_a_name_gives_its_row_locked_or_not(tmp_path: Path, db_uri: str) -> None:
    client = _client(tmp_path, db_uri)
    made = client.tracking.create_experiment("exp-a")
    with client.store.db.read() as conn:
        row = named_row(conn, t.experiments, "exp-a", what="experiment", hint="unused")
    with client.store.db.write() as conn:
        locked = named_row(conn, t.experiments, "exp-a", what="experiment", hint="x", lock=True)
    assert row.id == made.id == locked.id
    client.close()


def test_an_unknown_name_lists_the_first_names_and_how_to_create_one(
    tmp_path: Path, db_uri: str
) -> None:
    client = _client(tmp_path, db_uri)
    names = [f"exp-{i:02d}" for i in range(KNOWN_NAMES + 2)]
    for name in reversed(names):
        client.tracking.create_experiment(name)
    with client.store.db.read() as conn, pytest.raises(NotFound) as caught:
        named_row(conn, t.experiments, "exp-zz", what="experiment", hint="make one with X")
    message = str(caught.value)
    # The Default experiment sorts first; then the first names in order, at most KNOWN_NAMES.
    shown = message.split("experiments: ", 1)[1].split(" (", 1)[0].split(", ")
    assert message.startswith("experiment 'exp-zz' does not exist; experiments: ")
    assert len(shown) == KNOWN_NAMES and shown == sorted(shown)
    assert names[KNOWN_NAMES + 1] not in shown
    assert message.endswith("(make one with X)")
    with client.store.db.read() as conn, pytest.raises(NotFound, match=r"loops: none \(hint\)"):
        named_row(conn, t.loops, "gone", what="loop", hint="hint")
    client.close()


class _Things(Audited):
    _subject_type = "thing"


def test_an_audited_service_records_its_actor_and_subject_type(tmp_path: Path, db_uri: str) -> None:
    client = _client(tmp_path, db_uri)
    ada, default = _Things(client.store, actor="ada"), _Things(client.store, clock=lambda: 5)
    with client.store.db.write() as conn:
        ada._audit(conn, "thing.create", "t1", after={"n": 1})
        default._audit(conn, "thing.part", "p1", before={"n": 1}, kind="thing_part")
    first, second = events(client.store.db)[-2:]
    assert (first.actor, first.action, first.subject_type, first.subject_id) == (
        "ada",
        "thing.create",
        "thing",
        "t1",
    )
    assert first.after == {"n": 1} and first.before is None
    assert (second.actor, second.subject_type, second.before) == (
        client.store.actor,
        "thing_part",
        {"n": 1},
    )
    assert default._clock() == 5 and default.db is client.store.db
    client.close()
