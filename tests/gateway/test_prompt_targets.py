"""Prompt targets' rendering (``gateway.prompt_targets.bind``) and their configuration."""

from __future__ import annotations

import pytest

from loopwright.errors import InvalidInput
from loopwright.gateway.config import check_route, config_to_dict
from loopwright.gateway.entities import Target
from loopwright.gateway.prompt_targets import PromptUnavailable, bind, variables_text
from loopwright.prompts.entities import PromptVersion

CHAT = PromptVersion(
    id="0", name="support", version=3, kind="chat",
    template=({"role": "system", "content": "Answer for {{ company }}."},
              {"role": "user", "content": "{{ question }}"}),
    variables=("company", "question"), digest="", model_config={"temperature": 0.1, "seed": 7},
)  # fmt: skip
TEXT = PromptVersion(
    id="1", name="title", version=1, kind="text", template="Title for {{ topic }}:",
    variables=("topic",), digest="",
)  # fmt: skip
RESOLVED: dict[str, PromptVersion | str] = {
    "prompts:/support@production": CHAT, "prompts:/title/1": TEXT, "prompts:/gone/1": "x",
}  # fmt: skip
URL = "http://127.0.0.1:9/v1"


def _target(prompt: str | None) -> Target:
    return Target("primary", URL, "m", prompt=prompt)


def test_chat_messages_come_first_and_the_callers_parameters_win() -> None:
    body = {"prompt_variables": {"company": "Acme", "question": "Hi?"}, "seed": 1,
            "messages": [{"role": "user", "content": "more"}]}  # fmt: skip
    sent, used = bind("chat", body, _target("prompts:/support@production"), RESOLVED)
    assert used == "support/3"
    assert [m["content"] for m in sent["messages"]] == ["Answer for Acme.", "Hi?", "more"]
    assert (sent["temperature"], sent["seed"]) == (0.1, 1)
    assert "prompt_variables" not in sent and "prompt_variables" in body  # the body is kept


def test_completions_take_the_rendered_text_before_the_callers_prompt() -> None:
    sent, used = bind("completions", {"prompt_variables": {"topic": "tea"}, "prompt": "Go"},
                      _target("prompts:/title/1"), RESOLVED)  # fmt: skip
    assert (sent["prompt"], used) == ("Title for tea:\nGo", "title/1")
    chat_as_text, _ = bind("completions", {"prompt_variables": {"company": "A", "question": "Q"}},
                           _target("prompts:/support@production"), RESOLVED)  # fmt: skip
    assert chat_as_text["prompt"] == "Answer for A.\nQ"


def test_embeddings_and_plain_targets_pass_through_without_the_variables() -> None:
    body = {"input": "x", "prompt_variables": {"topic": "tea"}}
    assert bind("embeddings", body, _target("prompts:/title/1"), RESOLVED) == ({"input": "x"}, None)
    assert bind("chat", body, _target(None), RESOLVED) == ({"input": "x"}, None)


def test_bad_values_and_unresolved_prompts_are_refused() -> None:
    target = _target("prompts:/title/1")
    with pytest.raises(InvalidInput, match="must be an object"):
        bind("chat", {"prompt_variables": ["tea"]}, target, RESOLVED)
    with pytest.raises(InvalidInput, match="topic"):
        bind("chat", {"prompt_variables": {}}, target, RESOLVED)
    with pytest.raises(InvalidInput, match="over 100000 characters"):
        bind("chat", {"prompt_variables": {"topic": "t" * 100_001}}, target, RESOLVED)
    with pytest.raises(PromptUnavailable, match="prompts:/gone/1: x"):
        bind("chat", {}, _target("prompts:/gone/1"), RESOLVED)
    with pytest.raises(PromptUnavailable, match="not resolved yet"):
        bind("chat", {}, _target("prompts:/new/1"), RESOLVED)
    assert variables_text({"prompt_variables": {"a": "sk-123", "b": 4}}) == "sk-123\n4"
    assert variables_text({"prompt_variables": "x"}) == ""


def test_a_routes_prompt_is_checked_and_kept() -> None:
    doc = {"targets": [{"name": "primary", "base_url": URL, "model": "m",
                        "prompt": "prompts:/support@production"}]}  # fmt: skip
    config = check_route(doc)
    assert config.targets[0].prompt == "prompts:/support@production"
    assert check_route(config_to_dict(config)) == config
    plain = check_route({"targets": [{**doc["targets"][0], "prompt": None}]})
    assert "prompt" not in config_to_dict(plain)["targets"][0]  # stored as before
    for bad in ("support/1", "prompts:/support", "prompts:/a@b/c", 3):
        with pytest.raises(InvalidInput, match=r"targets\[0\] \(primary\): prompt"):
            check_route({"targets": [{**doc["targets"][0], "prompt": bad}]})
