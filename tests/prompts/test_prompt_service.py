"""Prompts, immutable versions, loading and formatting, tags, search and diffs on SQLite and
PostgreSQL; and every refusal of bad input."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from pydantic import BaseModel

from loopwright.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from loopwright.prompts.service import PromptService
from loopwright.registry.service import RegistryService
from loopwright.store.audit import events, verify_chain
from loopwright.store.home import Store
from loopwright.store.limits import PROMPT_TEMPLATE

CHAT = [
    {"role": "system", "content": "You answer for {{ company }}."},
    {"role": "user", "content": "{{ question }}"},
]


def test_versions_are_numbered_without_gaps_and_keep_their_content(
    prompts: PromptService, store: Store
) -> None:
    one = prompts.register(
        "support",
        "Answer {{ question }} politely, {{name}}.",
        commit_message="first",
        model_config={"model_name": "gpt-4o-mini", "temperature": 0.2},
        tags={"team": "care"},
        description="the support answer",
    )
    two = prompts.register("support", CHAT, response_format={"type": "object"})
    assert (one.version, two.version) == (1, 2)
    assert one.kind == "text" and two.kind == "chat"
    assert one.variables == ("question", "name")
    assert two.variables == ("company", "question")
    assert one.uri == "prompts:/support/1"
    again = prompts.get_version("support", 1)
    assert again.template == one.template
    assert again.model_config == {"model_name": "gpt-4o-mini", "temperature": 0.2}
    assert again.commit_message == "first" and again.created_by == "ada"
    assert again.tags == {"team": "care"}
    assert prompts.get_version("support", 2).template == tuple(CHAT)
    assert [v.version for v in prompts.versions("support")] == [1, 2]
    prompt = prompts.get("support")
    assert prompt.latest_version == 2 and prompt.description == "the support answer"
    actions = [e.action for e in events(store.db, subject_type="prompt_version")]
    assert actions == ["prompt_version.create", "prompt_version.create"]
    assert verify_chain(store.db).ok


def test_the_digest_names_the_content_and_identical_content_still_makes_a_version(
    prompts: PromptService,
) -> None:
    one = prompts.register("p", "Hi {{ x }}", model_config={"a": 1, "b": 2})
    two = prompts.register("p", "Hi {{ x }}", model_config={"b": 2, "a": 1})  # same content
    three = prompts.register("p", "Hi {{ x }}!", model_config={"a": 1, "b": 2})
    assert one.digest == two.digest != three.digest
    assert (one.version, two.version) == (1, 2)  # MLflow's behaviour: every register counts
    same = prompts.register(
        "p", "Hi {{ x }}!", model_config={"a": 1, "b": 2}, skip_if_unchanged=True
    )
    assert same.version == 3
    assert prompts.get("p").latest_version == 3


def test_load_by_number_alias_and_latest_and_format(prompts: PromptService) -> None:
    prompts.register("greet", "Hello {{ name }}!")
    prompts.register("greet", CHAT)
    assert prompts.set_alias("greet", "staging", 1).applied
    assert prompts.load("prompts:/greet/1").format(name="Ada") == "Hello Ada!"
    assert prompts.load("prompts:/greet@staging").version == 1
    assert prompts.load("prompts:/greet@latest").version == 2
    assert prompts.load("prompts:/greet@latest").format(company="Acme", question="Why?") == [
        {"role": "system", "content": "You answer for Acme."},
        {"role": "user", "content": "Why?"},
    ]
    assert prompts.get("greet").aliases == {"staging": 1}
    assert prompts.get_version("greet", 1).aliases == ("staging",)


def test_format_refuses_missing_and_unknown_variables(prompts: PromptService) -> None:
    version = prompts.register("greet", "Hello {{ name }} from {{ place }}")
    with pytest.raises(InvalidInput, match=r"needs a value for 'place'"):
        version.format(name="Ada")
    with pytest.raises(InvalidInput, match=r"has no variable 'nmae'; its variables: name, place"):
        version.format(nmae="Ada", place="here")
    assert version.format(name="Ada", allow_partial=True) == "Hello Ada from {{ place }}"
    # A value that reads like a placeholder is inserted as is, never expanded.
    assert version.format(name="{{ place }}", place="x") == "Hello {{ place }} from x"


def test_jinja_templates_render_in_the_sandbox(prompts: PromptService) -> None:
    version = prompts.register("list", "{% for i in items %}- {{ i }}\n{% endfor %}")
    assert version.format(items=["a", "b"]) == "- a\n- b\n"
    evil = prompts.register("evil", "{% if x %}{{ x.__class__.__mro__ }}{% endif %}")
    assert version.variables == ("items",)
    from jinja2.exceptions import SecurityError

    with pytest.raises(SecurityError):
        evil.format(x="s")
    with pytest.raises(InvalidInput, match="does not parse"):
        prompts.register("broken", "{% for %}")


@pytest.mark.parametrize(
    ("template", "match"),
    [
        ("", "must not be empty"),
        ("x" * (PROMPT_TEMPLATE + 1), "the cap is"),
        ([], "non-empty list of chat messages"),
        ([{"role": "user"}], "string 'content'"),
        ([{"content": "hi"}], "string 'role'"),
        (42, "not int"),
        ("nul \x00 here", "NUL"),
    ],
)
def test_bad_templates_are_refused(prompts: PromptService, template: object, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        prompts.register("p", template)  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        prompts.get("p")  # nothing was created


@pytest.mark.parametrize("name", ["", "a/b", "..", ".", "a b", "a@b", "x" * 257, "é"])
def test_bad_names_are_refused(prompts: PromptService, name: str) -> None:
    with pytest.raises(InvalidInput, match="prompt name"):
        prompts.register(name, "hi")


def test_bad_documents_and_uris_are_refused(prompts: PromptService) -> None:
    with pytest.raises(InvalidInput, match="model_config must be a mapping"):
        prompts.register("p", "hi", model_config=[1])  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="plain JSON"):
        prompts.register("p", "hi", model_config={"t": float("nan")})
    prompts.register("p", "hi")
    for uri in ["p/1", "prompts:/p", "prompts:/p/0", "prompts:/p/x", "models:/p/1", "prompts:/@a"]:
        with pytest.raises(InvalidInput, match="prompt URI"):
            prompts.load(uri)


def test_a_pydantic_class_is_stored_as_its_json_schema(prompts: PromptService) -> None:
    class Answer(BaseModel):
        text: str
        confidence: float

    version = prompts.register("p", "hi", response_format=Answer)
    assert version.response_format is not None
    assert version.response_format["properties"]["confidence"]["type"] == "number"


def test_unknown_prompts_versions_and_aliases_name_what_exists(prompts: PromptService) -> None:
    prompts.register("greet", "hi")
    with pytest.raises(NotFound, match=r"prompt 'gret' does not exist; prompts: greet"):
        prompts.load("prompts:/gret/1")
    with pytest.raises(NotFound, match=r"has no version 7; versions: 1..1"):
        prompts.load("prompts:/greet/7")
    prompts.set_alias("greet", "beta", 1)
    with pytest.raises(NotFound, match=r"has no alias 'prod'; aliases: beta \(and 'latest'\)"):
        prompts.load("prompts:/greet@prod")
    with pytest.raises(NotFound, match="has no alias 'prod'"):
        prompts.delete_alias("greet", "prod")
    with pytest.raises(InvalidInput, match="alias 'latest'"):
        prompts.set_alias("greet", "latest", 1)


def test_create_refuses_an_existing_prompt_and_a_registered_models_name(
    prompts: PromptService, store: Store
) -> None:
    prompts.create("p", description="d", tags={"a": "1"})
    with pytest.raises(AlreadyExists):
        prompts.create("p")
    RegistryService(store, actor="ada").create_model("churn")
    with pytest.raises(Conflict, match="a registered model is named 'churn'"):
        prompts.register("churn", "hi")


def test_tags_search_update_and_delete(prompts: PromptService, as_user: object) -> None:
    prompts.register("support-answer", "a", tags={"v": "1"})
    prompts.register("support_triage", "b")
    prompts.register("sales", "c")
    prompts.set_tag("support-answer", "team", "care")
    prompts.set_tag("sales", "team", "growth")
    prompts.set_version_tag("support-answer", 1, "eval", "passed")
    assert prompts.get_version("support-answer", 1).tags == {"v": "1", "eval": "passed"}
    prompts.delete_version_tag("support-answer", 1, "v")
    assert prompts.get_version("support-answer", 1).tags == {"eval": "passed"}
    assert [p.name for p in prompts.search("SUPPORT")] == ["support-answer", "support_triage"]
    assert [p.name for p in prompts.search("t_t")] == ["support_triage"]  # '_' is literal
    assert [p.name for p in prompts.search(tags={"team": "care"})] == ["support-answer"]
    assert [p.name for p in prompts.search(limit=1, offset=1)] == ["support-answer"]
    prompts.delete_tag("sales", "team")
    assert prompts.get("sales").tags == {}
    assert prompts.update("sales", description="new").description == "new"
    prompts.delete("sales")
    with pytest.raises(NotFound):
        prompts.get("sales")
    with pytest.raises(InvalidInput, match="limit"):
        prompts.search(limit=0)
    with pytest.raises(InvalidInput, match="offset must be an integer from 0 to 2147483647"):
        prompts.search(offset=2**63)  # past SQLite's INTEGER: refused, not an OverflowError


def test_diff_shows_the_template_and_changed_fields(prompts: PromptService) -> None:
    prompts.register("p", "line one\nline {{ two }}\n", model_config={"temperature": 0.1})
    prompts.register("p", "line one\nline {{ three }}\n", model_config={"temperature": 0.7})
    prompts.set_alias("p", "beta", 2)
    text = prompts.diff("p", 1, "beta")
    assert "--- prompts:/p/1 template\n+++ prompts:/p/2 template" in text
    assert "-line {{ two }}\n+line {{ three }}\n" in text
    assert '-  "temperature": 0.1\n+  "temperature": 0.7' in text
    assert prompts.diff("p", 2, 2) == ""


def _in_threads(threads: int, work: Callable[[int], object]) -> None:
    """Run ``work(n)`` in ``threads`` threads at once; re-raise the first failure."""
    with ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(work, n) for n in range(threads)]:
            future.result()


def test_concurrent_registers_get_distinct_gap_free_numbers(
    store: Store, prompts: PromptService
) -> None:
    prompts.register("busy", "v0")

    def register(n: int) -> None:
        for i in range(5):
            PromptService(store, actor="ada").register("busy", f"thread {n} #{i}")

    _in_threads(4, register)
    assert [v.version for v in prompts.versions("busy")] == list(range(1, 22))


def test_concurrent_first_registers_create_the_prompt_once(store: Store) -> None:
    _in_threads(4, lambda n: PromptService(store, actor="ada").register("fresh", f"text {n}"))
    assert [v.version for v in PromptService(store).versions("fresh")] == [1, 2, 3, 4]
