"""``RemotePrompts``: the prompt registry over a server's ``/api/v1/prompts`` (the ``Prompts``
protocol), acting as the token's user, so approvals keep separation of duties."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from ..prompts._checks import check_document, check_name
from ..prompts._template import check_template
from ..prompts.entities import Prompt, PromptAliasChange, PromptVersion
from ..prompts.uris import parse_prompt_uri
from ..registry.entities import ApprovalPolicy, ApprovalRequest
from . import _codec
from ._http import Http

__all__ = ["RemotePrompts"]

Json = dict[str, Any]


def _prompt(data: Json) -> Prompt:
    policy = data.pop("policy")
    rules = tuple(_codec._rule(r) for r in policy["rules"])
    return _codec._known(Prompt, data, policy=ApprovalPolicy(rules, policy["expires_after_s"]))


def _version(data: Json) -> PromptVersion:
    template = data.pop("template")
    return _codec._known(
        PromptVersion,
        data,
        template=template if isinstance(template, str) else tuple(template),
        variables=tuple(data.pop("variables")),
        aliases=tuple(data.pop("aliases")),
    )


def _segment(value: object) -> str:
    return quote(str(value), safe="")


class RemotePrompts:
    """Prompts on a Loopwright server (reads: a viewer token; writes: an editor's; decisions:
    an approver's; policies: an admin's)."""

    def __init__(self, http: Http) -> None:
        self._http = http

    def _path(self, name: str, *rest: object) -> str:
        # Checked here: a name such as '..' must not travel as a path segment.
        return "/".join(["/prompts", check_name(name), *(_segment(part) for part in rest)])

    def create(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        policy: ApprovalPolicy | None = None,
    ) -> Prompt:
        """A new prompt without versions yet; with ``policy``, then set as its policy (an
        admin's call)."""
        body = {"name": check_name(name), "description": description, "tags": dict(tags or {})}
        prompt = _prompt(self._http.post("/prompts", body))
        return prompt if policy is None else self.set_policy(name, policy)

    def get(self, name: str) -> Prompt:
        return _prompt(self._http.get(self._path(name)))

    def search(
        self,
        query: str | None = None,
        *,
        tags: Mapping[str, str] | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Prompt]:
        tag = [f"{k}={v}" for k, v in (tags or {}).items()] or None
        found = self._http.get("/prompts", query=query, tag=tag, limit=limit, offset=offset)
        return [_prompt(p) for p in found]

    def update(self, name: str, *, description: str | None) -> Prompt:
        body = {"description": description}
        return _prompt(self._http.request("PATCH", self._path(name), json_body=body))

    def set_policy(self, name: str, policy: ApprovalPolicy) -> Prompt:
        data = self._http.request("PUT", self._path(name, "policy"), json_body=policy.to_dict())
        return _prompt(data)

    def delete(self, name: str) -> None:
        self._http.request("DELETE", self._path(name))

    def set_tag(self, name: str, key: str, value: str) -> None:
        self._http.request("PUT", self._path(name, "tags", key), json_body={"value": value})

    def delete_tag(self, name: str, key: str) -> None:
        self._http.request("DELETE", self._path(name, "tags", key))

    def set_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        path = self._path(name, "versions", version, "tags", key)
        self._http.request("PUT", path, json_body={"value": value})

    def delete_version_tag(self, name: str, version: int, key: str) -> None:
        self._http.request("DELETE", self._path(name, "versions", version, "tags", key))

    def register(
        self,
        name: str,
        template: str | list[dict[str, Any]],
        *,
        commit_message: str | None = None,
        model_config: Mapping[str, Any] | None = None,
        response_format: Mapping[str, Any] | type | None = None,
        tags: Mapping[str, str] | None = None,
        description: str | None = None,
        skip_if_unchanged: bool = False,
    ) -> PromptVersion:
        """A new immutable version of ``name`` (checked here first, as the server checks it)."""
        _, checked = check_template(template)
        body = {
            "template": checked if isinstance(checked, str) else [dict(m) for m in checked],
            "commit_message": commit_message,
            "model_config": check_document("model_config", model_config),
            "response_format": check_document("response_format", response_format),
            "tags": dict(tags or {}),
            "description": description,
            "skip_if_unchanged": skip_if_unchanged,
        }
        return _version(self._http.post(self._path(name, "versions"), body))

    def get_version(self, name: str, version: int) -> PromptVersion:
        return _version(self._http.get(self._path(name, "versions", int(version))))

    def resolve(self, name: str, ref: int | str) -> PromptVersion:
        return _version(self._http.get(self._path(name, "versions", ref)))

    def load(self, uri: str) -> PromptVersion:
        name, ref = parse_prompt_uri(uri)
        return self.resolve(name, ref)

    def versions(self, name: str) -> list[PromptVersion]:
        return [_version(v) for v in self._http.get(self._path(name, "versions"))]

    def diff(self, name: str, v1: int | str, v2: int | str) -> str:
        return str(self._http.get(self._path(name, "diff"), v1=str(v1), v2=str(v2))["diff"])

    def set_alias(
        self, name: str, alias: str, version: int, *, comment: str | None = None
    ) -> PromptAliasChange:
        body = {"version": version, "comment": comment}
        data = self._http.request("PUT", self._path(name, "aliases", alias), json_body=body)
        request = data["request"]
        return PromptAliasChange(
            _version(data["version"]),
            None if request is None else _codec.approval_request(request),
        )

    def delete_alias(self, name: str, alias: str) -> None:
        self._http.request("DELETE", self._path(name, "aliases", alias))

    def requests(
        self, status: str | None = "pending", prompt: str | None = None
    ) -> list[ApprovalRequest]:
        found = self._http.get("/prompt-approvals", status=status or "any", prompt=prompt)
        return [_codec.approval_request(r) for r in found]

    def get_request(self, request_id: str) -> ApprovalRequest:
        return _codec.approval_request(self._http.get(f"/prompt-approvals/{_segment(request_id)}"))

    def approve(self, request_id: str, comment: str | None = None) -> ApprovalRequest:
        path = f"/prompt-approvals/{_segment(request_id)}/approve"
        return _codec.approval_request(self._http.post(path, {"comment": comment}))

    def reject(self, request_id: str, comment: str) -> ApprovalRequest:
        path = f"/prompt-approvals/{_segment(request_id)}/reject"
        return _codec.approval_request(self._http.post(path, {"comment": comment}))
