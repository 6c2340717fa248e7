"""The models, model version (card, SBOM) and approvals pages: an approver decides requests in
Chromium and the audit log names them; a viewer reads everything and changes nothing; the
registry's refusals (separation of duties, a rejection without a reason) are pages, not 500s."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from _browsing import settle as _settle
from _browsing import signed_in as _session

from loopwright.config import Settings, resolve_settings
from loopwright.server.ui.approvals import NOTICES

pytest.importorskip("sklearn")

CARD_TEXT = "Flags customers likely to <b>churn</b> within 30 days."


@dataclass(frozen=True)
class Seeded:
    approve_me: str  # eve: champion -> v1 (abe approves it in the browser)
    reject_me: str  # eve: v1 -> Production (abe rejects it)
    own: str  # abe: challenger -> v2 (nobody may decide it here; it stays pending)
    quorum: str  # eve: fraud's champion -> v1, needing two approvals
    run_id: str


def _seed(settings: Settings) -> Seeded:
    import pandas as pd
    from sklearn.dummy import DummyClassifier

    from loopwright.client import Client
    from loopwright.loop._gate_records import GateService
    from loopwright.loop.entities import RuleOutcome
    from loopwright.loop.gates import load_gate_spec
    from loopwright.registry.entities import ApprovalPolicy, ApprovalRequest, ApprovalRule
    from loopwright.registry.service import RegistryService

    def as_user(name: str) -> Settings:
        return resolve_settings(home=settings.home, db_uri=settings.db_uri, user=name)

    frame = pd.DataFrame({"tenure": [1.0, 30.0, 2.0, 40.0], "plan": ["a", "b", "a", "b"]})
    with Client(as_user("eve")) as eve:
        holdout = eve.datasets.add("churn-holdout", frame.assign(churned=[1, 0, 1, 0]))
        with eve.start_run(experiment="churn") as run:
            model = DummyClassifier().fit(frame[["tenure"]], [1, 0, 1, 0])
            run.log_model(model, input_example=frame[["tenure"]])
        eve.registry.register(
            "churn", run_id=run.id, metrics={"auc": 0.875}, dataset_version_ids=[holdout.id]
        )
        eve.registry.register("churn", run_id=run.id)
        eve.registry.transition_stage("churn", 2, "Staging")  # not protected: applied
        eve.registry.register("fraud", run_id=run.id, description="card fraud scores")
        gate = {"name": "quality", "dataset": "churn-holdout", "target": "churned"}
        GateService(eve.store, actor="eve").record(
            load_gate_spec({**gate, "rules": ["metrics.auc >= 0.8"]}),
            model="churn",
            version=1,
            dataset_version_id=holdout.id,
            outcomes=[RuleOutcome("metrics.auc >= 0.8", 0.875, True)],
        )
        ada = RegistryService(eve.store, actor="ada")
        rules = ("stage:Production", "alias:champion", "alias:challenger")
        ada.set_policy("churn", ApprovalPolicy(tuple(ApprovalRule(r) for r in rules)))
        ada.set_card_info("churn", intended_use=CARD_TEXT)
        champion = eve.registry.set_alias("churn", "champion", 1, comment="best auc").request
        production = eve.registry.transition_stage("churn", 1, "Production")
        abe = RegistryService(eve.store, actor="abe")
        own = abe.set_alias("churn", "challenger", 2).request
        ada.set_policy("fraud", ApprovalPolicy((ApprovalRule("alias:champion", approvals=2),)))
        quorum = eve.registry.set_alias("fraud", "champion", 1).request
    assert champion and own and quorum and isinstance(production, ApprovalRequest)
    return Seeded(champion.id, production.id, own.id, quorum.id, run.id)


@pytest.fixture(scope="module")
def ui_seed() -> Callable[[Settings], Seeded]:
    return _seed


def _api(ui_server: Any, user: str, path: str) -> Any:
    answer = httpx.get(
        f"{ui_server.url}/api/v1{path}",
        headers={"Authorization": f"Bearer {ui_server.tokens[user]}"},
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_an_approver_approves_on_the_model_page_and_the_audit_log_names_them(
    open_ui: Callable[..., Any], ui_server: Any, snap: Any, accessible: Any
) -> None:
    seeded: Seeded = ui_server.seeded
    page = open_ui("abe")
    _settle(page)  # the overview the sign-in led to
    page.goto("/ui/models")
    rows = page.locator("main table tbody tr")
    assert rows.count() == 2
    assert "churn" in rows.nth(0).inner_text() and "fraud" in rows.nth(1).inner_text()
    assert "Staging v2" in rows.nth(0).inner_text()
    accessible(page)
    snap(page, "models-list")
    _settle(page)
    page.click("main table >> text=churn")
    assert page.url.endswith("/ui/models/churn")
    row = page.locator(f"#request-{seeded.approve_me}")
    assert "champion" in row.inner_text() and "eve" in row.inner_text()
    accessible(page)
    snap(page, "models-model")
    row.locator("input[name=comment]").fill("auc holds on the holdout")
    _settle(page)
    with page.expect_navigation():
        row.locator("button", has_text="Approve").click()
    assert "/ui/models/churn?decided=applied" in page.url
    assert "the change is applied" in page.locator("[role=status]").inner_text()
    assert page.locator(f"#request-{seeded.approve_me}").count() == 0  # no longer pending
    aliases = page.locator("dl.props").inner_text()
    assert "champion" in aliases and "v1" in aliases
    accessible(page)

    request = _api(ui_server, "vic", f"/approvals/{seeded.approve_me}")
    assert request["status"] == "approved"
    assert [(d["actor"], d["comment"]) for d in request["decisions"]] == [
        ("abe", "auc holds on the holdout")
    ]
    assert _api(ui_server, "vic", "/models/churn")["aliases"]["champion"] == 1
    events = _api(ui_server, "vic", f"/audit/events?subject_id={seeded.approve_me}")
    assert ("abe", "approval.approve") in [(e["actor"], e["action"]) for e in events]


def test_a_viewer_sees_no_decision_buttons_and_a_forged_decision_changes_nothing(
    open_ui: Callable[..., Any], ui_server: Any, snap: Any, accessible: Any
) -> None:
    seeded: Seeded = ui_server.seeded
    page = open_ui("vic")
    _settle(page)  # the overview the sign-in led to
    page.goto("/ui/approvals")
    assert page.locator(f"#request-{seeded.own}").count() == 1
    assert page.locator("form[action*='/approve'], form[action*='/reject']").count() == 0
    assert "needs role approver" in page.locator(f"#request-{seeded.own}").inner_text()
    accessible(page)
    snap(page, "approvals-viewer")
    _settle(page)
    page.goto("/ui/models/churn")
    assert page.locator("main button").count() == 0
    accessible(page)

    with _session(ui_server, "vic") as http:
        token = http.cookies["lw_csrf"]
        for decision in ("approve", "reject"):
            forged = http.post(
                f"/ui/approvals/{seeded.own}/{decision}",
                data={"csrf_token": token, "comment": "forged", "next": "/ui/approvals"},
            )
            assert forged.status_code == 403
            assert "text/html" in forged.headers["content-type"]
            assert "viewer" in forged.text
    request = _api(ui_server, "ada", f"/approvals/{seeded.own}")
    assert (request["status"], request["decisions"]) == ("pending", [])


def test_the_requester_approving_their_own_request_is_told_why_not(
    open_ui: Callable[..., Any], ui_server: Any, snap: Any, accessible: Any
) -> None:
    seeded: Seeded = ui_server.seeded
    page = open_ui("abe", allow=(403,))
    _settle(page)  # the overview the sign-in led to
    page.goto("/ui/approvals")
    row = page.locator(f"#request-{seeded.own}")
    _settle(page)
    with page.expect_navigation():
        row.locator("button", has_text="Approve").click()
    assert page.locator("h1").inner_text() == "Not allowed"
    message = page.locator("[role=alert]").inner_text()
    assert "opened request" in message and "cannot approve" in message
    accessible(page)
    snap(page, "approvals-refused")
    _settle(page)
    with page.expect_navigation():
        page.click("text=Back to where you were")
    assert page.url.endswith("/ui/approvals")
    assert _api(ui_server, "abe", f"/approvals/{seeded.own}")["status"] == "pending"


def test_an_approver_rejects_with_a_reason_and_nothing_moves(
    open_ui: Callable[..., Any], ui_server: Any, snap: Any, accessible: Any
) -> None:
    seeded: Seeded = ui_server.seeded
    page = open_ui("abe")
    _settle(page)  # the overview the sign-in led to
    page.goto("/ui/approvals")
    accessible(page)
    snap(page, "approvals-pending")
    row = page.locator(f"#request-{seeded.reject_me}")
    assert "Production" in row.inner_text()
    row.locator("textarea[name=comment]").fill("no fairness review yet")
    _settle(page)
    with page.expect_navigation():
        row.locator("button", has_text="Reject").click()
    assert "decided=rejected" in page.url
    assert "nothing changed" in page.locator("[role=status]").inner_text()
    _settle(page)
    page.goto("/ui/approvals?status=rejected")
    row = page.locator(f"#request-{seeded.reject_me}")
    assert "no fairness review yet" in row.inner_text() and "abe" in row.inner_text()
    assert row.locator("button").count() == 0
    accessible(page)
    snap(page, "approvals-rejected")
    assert _api(ui_server, "vic", "/models/churn/versions/1")["stage"] == "None"


def test_the_version_page_shows_the_card_escaped_and_downloads_the_sbom(
    open_ui: Callable[..., Any], ui_server: Any, snap: Any, accessible: Any
) -> None:
    from loopwright.client import Client
    from loopwright.registry.reports import model_card, model_sbom
    from loopwright.registry.reports.sbom import validate_sbom

    seeded: Seeded = ui_server.seeded
    page = open_ui("vic")
    _settle(page)  # the overview the sign-in led to
    page.goto("/ui/models/churn/versions/1")
    card = page.locator("section.card-body")
    assert CARD_TEXT in card.inner_text()  # the stored text as text, its tags not obeyed
    assert card.locator("b").count() == 0
    assert "Not provided" in card.inner_text()  # limitations were never written
    assert page.locator(f"a[href='/ui/runs/{seeded.run_id}']").count() == 1
    lineage = page.locator("main a", has_text="Lineage").get_attribute("href")
    assert lineage == "/ui/lineage?subject=churn%401&kind=model_version"
    assert "auc" in page.locator("main").inner_text()
    signature = page.locator("main table", has=page.locator("th", has_text="Required"))
    assert "tenure" in signature.first.inner_text()
    gates = page.locator("main table", has=page.locator("th", has_text="Verdict"))
    assert "quality" in gates.inner_text() and "metrics.auc >= 0.8" in gates.inner_text()
    assert page.locator("a[href='/ui/datasets/churn-holdout/versions/1']").count() == 1
    accessible(page)
    snap(page, "models-version")

    _settle(page)
    with page.expect_download() as download:
        page.click("text=Download SBOM")
    saved = download.value
    assert saved.suggested_filename == "churn-v1.cdx.json"
    document = json.loads(Path(saved.path()).read_text(encoding="utf-8"))
    assert (document["bomFormat"], document["specVersion"]) == ("CycloneDX", "1.6")
    validate_sbom(document)
    settings = resolve_settings(
        home=ui_server.settings.home, db_uri=ui_server.settings.db_uri, user="vic"
    )
    with Client(settings) as client:
        expected = dict(model_sbom(client, "churn", 1, card=model_card(client, "churn", 1)))
    for bom in (document, expected):  # what differs between two builds of the same BOM
        bom.pop("serialNumber")
        bom["metadata"].pop("timestamp")
    assert document == expected


def test_bad_addresses_and_parameters_are_error_pages(ui_server: Any) -> None:
    with _session(ui_server, "vic") as http:
        cases = {
            "/ui/models/nope": (404, "nope"),
            "/ui/models/churn/versions/99": (404, "99"),
            "/ui/models/churn/versions/99/sbom.json": (404, "99"),
            "/ui/models/churn/versions/x": (400, "version"),
            "/ui/models?offset=-1": (400, "offset"),
            "/ui/models?limit=501": (400, "limit"),
            "/ui/models?filter=name+%3D%3D": (400, "name"),
            "/ui/approvals?status=maybe": (400, "status"),
        }
        for path, (status, words) in cases.items():
            answer = http.get(path)
            assert answer.status_code == status, (path, answer.text[:300])
            assert "text/html" in answer.headers["content-type"], path
            assert words in answer.text, path
        found = http.get("/ui/models?filter=name+LIKE+%27fr%25%27")
        assert found.status_code == 200
        assert "fraud" in found.text and "/ui/models/churn" not in found.text


def test_a_decision_needs_the_csrf_token_and_a_rejection_a_reason(ui_server: Any) -> None:
    seeded: Seeded = ui_server.seeded
    with _session(ui_server, "ada") as http:
        token = http.cookies["lw_csrf"]
        missing = http.post(f"/ui/approvals/{seeded.own}/approve", data={"comment": "x"})
        assert missing.status_code == 403 and "CSRF" in missing.text
        reasonless = http.post(
            f"/ui/approvals/{seeded.own}/reject",
            data={"csrf_token": token, "comment": "  ", "next": "/ui/models/churn"},
        )
        assert reasonless.status_code == 400
        assert "needs a comment" in reasonless.text
        assert 'href="/ui/models/churn"' in reasonless.text  # the way back
        unknown = http.post(
            "/ui/approvals/no-such-request/approve",
            data={"csrf_token": token, "next": "https://evil.example/"},
        )
        assert unknown.status_code == 404
        assert 'href="/ui/approvals"' in unknown.text  # not the other site
    assert _api(ui_server, "vic", f"/approvals/{seeded.own}")["status"] == "pending"


def test_each_approval_returns_to_the_form_s_page_saying_whether_it_applied(
    ui_server: Any,
) -> None:
    seeded: Seeded = ui_server.seeded
    for user, outcome in (("ada", "approved"), ("abe", "applied")):
        with _session(ui_server, user) as http:
            answer = http.post(
                f"/ui/approvals/{seeded.quorum}/approve",
                data={"csrf_token": http.cookies["lw_csrf"], "next": "/ui/models/fraud"},
            )
            assert answer.status_code == 303
            assert answer.headers["location"] == f"/ui/models/fraud?decided={outcome}"
            shown = http.get(answer.headers["location"])
            assert NOTICES[outcome] in shown.text
            if outcome == "approved":  # one of two: still waiting, with ada's decision
                assert f'id="request-{seeded.quorum}"' in shown.text
                assert "1 of 2" in shown.text
    request = _api(ui_server, "vic", f"/approvals/{seeded.quorum}")
    assert [d["actor"] for d in request["decisions"]] == ["ada", "abe"]
    assert _api(ui_server, "vic", "/models/fraud")["aliases"] == {"champion": 1}


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/ui/models/churn?offset=50", "/ui/models/churn?offset=50"),
        ("https://evil.example/ui/", "/ui/approvals"),
        ("//evil.example/ui/", "/ui/approvals"),
        ("/api/v1/models", "/ui/approvals"),
        ("/ui\\..\\x", "/ui/approvals"),
        ("", "/ui/approvals"),
    ],
)
def test_a_decision_returns_only_to_dashboard_pages(target: str, expected: str) -> None:
    from loopwright.server.ui.approvals import _back_to

    assert _back_to(target) == expected


def _ids_on_pages(http: httpx.Client, path: str, pattern: str, per_page: int) -> list[str]:
    """Every id ``pattern`` finds on ``path``'s pages of ``per_page``, page after page."""
    import re

    found: list[str] = []
    for offset in range(0, 1000, per_page):
        page = http.get(f"{path}&limit={per_page}&offset={offset}")
        assert page.status_code == 200, page.text[:300]
        ids = re.findall(pattern, page.text.split("<h2>Versions</h2>")[-1])
        assert len(ids) <= per_page
        if not ids:
            return found
        found += ids
    raise AssertionError(f"{path} never ran out of pages")


def test_long_lists_are_read_a_page_at_a_time(ui_server: Any) -> None:
    """More requests and versions than a page: each page is its slice of the registry's list
    (newest first), with the total; deleted versions still listed; a due request expired.
    Last in the module: it adds a model and requests."""
    from loopwright.registry.entities import ApprovalPolicy, ApprovalRule
    from loopwright.registry.service import RegistryService
    from loopwright.store import schema as t
    from loopwright.store.home import open_store

    seeded: Seeded = ui_server.seeded
    with open_store(ui_server.settings, migrate=False) as store:
        eve, ada = RegistryService(store, actor="eve"), RegistryService(store, actor="ada")
        for _ in range(3):
            eve.register("paged", run_id=seeded.run_id)
        eve.delete_version("paged", 2)
        ada.set_policy("paged", ApprovalPolicy((ApprovalRule("alias:champion"),)))
        due = eve.set_alias("paged", "champion", 3).request
        assert due is not None
        with store.db.write() as conn:  # past its expiry: listing it marks it expired
            conn.execute(
                t.approval_requests.update()
                .where(t.approval_requests.c.id == due.id)
                .values(expires_at=1)
            )
        with _session(ui_server, "vic") as http:
            pending = http.get("/ui/approvals?status=pending")
            assert pending.status_code == 200 and f"request-{due.id}" not in pending.text
            assert f"request-{due.id}" in http.get("/ui/approvals?status=expired").text
            every = [r.id for r in reversed(RegistryService(store, actor="vic").requests(None))]
            assert len(every) > 2
            pattern = r'<tr id="request-([^"]+)">'
            paged = _ids_on_pages(http, "/ui/approvals?status=any", pattern, 2)
            assert paged == every
            first = http.get("/ui/approvals?status=any&limit=2").text
            assert f"1\u20132 of {len(every)}" in first and 'rel="next"' in first

            pattern = r'<td><a href="/ui/models/paged/versions/(\d+)">'
            assert _ids_on_pages(http, "/ui/models/paged?x=", pattern, 2) == ["3", "2", "1"]
            versions = http.get("/ui/models/paged?limit=2").text.split("<h2>Versions</h2>")[-1]
            assert "1\u20132 of 3" in versions and "DELETED" in versions  # v2, marked
