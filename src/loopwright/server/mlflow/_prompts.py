"""MLflow's prompt registry calls, served from Loopwright's prompts (not stored as models).

An MLflow 3 client keeps prompts in the model registry's API: a registered model tagged
``mlflow.prompt.is_prompt=true`` whose versions carry the template in version tags
(``mlflow.prompt.text``, ``_mlflow_prompt_type``, ``_mlflow_prompt_response_format``,
``_mlflow_prompt_model_config``). The registry routes (:mod:`._registry`) ask this module first
through :func:`prompt_aware`: a call about a prompt (a name in the prompts table, a create with
the prompt tag, a search filtering on it) is answered here from
:class:`~loopwright.prompts.service.PromptService`; any other call goes on to the models. A
model search without the prompt filter lists no prompt, as MLflow's does not.

What differs from MLflow: prompt versions are immutable, so updating or deleting one is refused;
moving a protected alias (``production``, ``champion`` by default) opens an approval request and
the client gets PERMISSION_DENIED naming it, as for models.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi.responses import Response

from ...errors import AlreadyExists, Conflict, InvalidInput, NotFound, PermissionDenied
from ...prompts.entities import Prompt, PromptVersion
from ...registry._search import MODEL_COLUMNS, PROMPT_TAG, VERSION_COLUMNS, parse
from ...store.filters.memory import predicate
from . import _messages as m
from ._common import reply
from ._convert import _compact, pairs
from ._paging import page, read_offset

if TYPE_CHECKING:
    from ...prompts.service import PromptService
    from .._state import ServerState
    from ..auth import Identity

__all__ = ["prompt_aware"]

TEXT_TAG = "mlflow.prompt.text"
TYPE_TAG = "_mlflow_prompt_type"
RESPONSE_FORMAT_TAG = "_mlflow_prompt_response_format"
MODEL_CONFIG_TAG = "_mlflow_prompt_model_config"
_INTERNAL = frozenset({PROMPT_TAG, TEXT_TAG, TYPE_TAG, RESPONSE_FORMAT_TAG, MODEL_CONFIG_TAG})
_SOURCE = "prompt-template"  # what MLflow's store records as a prompt version's source

Handler = Callable[[Any, "ServerState", "Identity"], Response | None]
F = TypeVar("F", bound=Callable[..., Response])


def prompt_aware(handler: Handler) -> Callable[[F], F]:
    """Decorate a registry route: ``handler(message, state, caller)`` answers first when the
    call is about a prompt (a Response), else returns None and the route runs."""

    def decorate(route: F) -> F:
        @functools.wraps(route)
        def wrapper(**kwargs: Any) -> Response:
            message = kwargs.get("body", kwargs.get("q"))
            answer = handler(message, kwargs["state"], kwargs["caller"])
            return answer if answer is not None else route(**kwargs)

        # FastAPI reads the parameters from the signature; resolved here, in the route's module
        # (its string annotations name that module's imports, not this one's).
        wrapper.__signature__ = inspect.signature(route, eval_str=True)  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def _service(state: ServerState, caller: Identity) -> PromptService:
    from ...prompts.service import PromptService

    return PromptService(state.store, actor=caller.user)


def _is_prompt(state: ServerState, name: str) -> bool:
    from ...prompts._rows import prompt_exists

    return prompt_exists(state.store.db, name)


def _tagged_prompt(tags: list[m.KeyValue]) -> bool:
    return any(tag.key == PROMPT_TAG and tag.value.lower() == "true" for tag in tags)


# --- messages --------------------------------------------------------------------------------


def version_tags(version: PromptVersion) -> dict[str, str]:
    """The version's tags as MLflow stores them: the template and settings, then the user's."""
    tags = {
        PROMPT_TAG: "true",
        TEXT_TAG: version.template
        if isinstance(version.template, str)
        else json.dumps(list(version.template)),
        TYPE_TAG: version.kind,
    }
    if version.response_format is not None:
        tags[RESPONSE_FORMAT_TAG] = json.dumps(version.response_format)
    if version.model_config is not None:
        tags[MODEL_CONFIG_TAG] = json.dumps(version.model_config)
    return {**tags, **version.tags}


def _version_json(version: PromptVersion) -> dict[str, Any]:
    return _compact(
        {
            "name": version.name,
            "version": str(version.version),
            "creation_timestamp": version.created_at,
            "last_updated_timestamp": version.created_at,
            "user_id": version.created_by,
            "current_stage": "None",
            "description": version.commit_message,
            "source": _SOURCE,
            "status": "READY",
            "tags": pairs(version_tags(version)),
            "aliases": list(version.aliases),
        }
    )


def _prompt_json(prompt: Prompt, latest: PromptVersion | None) -> dict[str, Any]:
    return _compact(
        {
            "name": prompt.name,
            "creation_timestamp": prompt.created_at,
            "last_updated_timestamp": prompt.updated_at,
            "user_id": prompt.created_by,
            "description": prompt.description,
            "latest_versions": [] if latest is None else [_version_json(latest)],
            "tags": pairs({PROMPT_TAG: "true", **prompt.tags}),
            "aliases": [
                {"alias": alias, "version": str(number)}
                for alias, number in sorted(prompt.aliases.items())
            ],
        }
    )


def _prompt_reply(service: PromptService, name: str) -> Response:
    prompt = service.get(name)
    latest = (
        None if prompt.latest_version is None else service.get_version(name, prompt.latest_version)
    )
    return reply({"registered_model": _prompt_json(prompt, latest)})


# --- registered models -----------------------------------------------------------------------


def create_model(
    body: m.CreateRegisteredModel, state: ServerState, caller: Identity
) -> Response | None:
    if not _tagged_prompt(body.tags):
        if _is_prompt(state, body.name):
            raise AlreadyExists(
                f"a prompt is named {body.name!r}; MLflow keeps prompts and models in one "
                "namespace, so pick another name for the model"
            )
        return None
    service = _service(state, caller)
    tags = {t.key: t.value for t in body.tags if t.key != PROMPT_TAG}
    prompt = service.create(body.name, description=body.description, tags=tags)
    return reply({"registered_model": _prompt_json(prompt, None)})


def get_model(q: m.ModelRef, state: ServerState, caller: Identity) -> Response | None:
    if not _is_prompt(state, q.name):
        return None
    return _prompt_reply(_service(state, caller), q.name)


def _all_prompts(service: PromptService) -> list[Prompt]:
    found: list[Prompt] = []
    while batch := service.search(limit=1000, offset=len(found)):
        found.extend(batch)
        if len(batch) < 1000:
            break
    return found


def search_models(q: m.SearchRegistry, state: ServerState, caller: Identity) -> Response | None:
    """A search that filters on ``mlflow.prompt.is_prompt = 'true'`` lists prompts."""
    parsed = parse(q.filter or "", MODEL_COLUMNS)
    if not any(
        c.entity == "tags" and c.key == PROMPT_TAG and c.op == "=" and c.value == "true"
        for c in parsed.comparisons
    ):
        return None
    if q.order_by:
        raise InvalidInput("order_by is not supported for prompt searches; prompts come by name")
    check = predicate(parsed)
    prompts = [p for p in _all_prompts(_service(state, caller)) if check(_prompt_lookup(p))]
    search = [q.filter or "", q.order_by]
    chosen, token = page(prompts, read_offset(q.page_token, search), q.max_results or 100, search)
    message: dict[str, Any] = {"registered_models": [_prompt_json(p, None) for p in chosen]}
    if token:
        message["next_page_token"] = token
    return reply(message)


def _prompt_lookup(prompt: Prompt) -> Callable[[str, str], Any]:
    tags = {PROMPT_TAG: "true", **prompt.tags}

    def read(entity: str, key: str) -> Any:
        return prompt.name if entity == "attributes" else tags.get(key)

    return read


def update_model(
    body: m.UpdateRegisteredModel, state: ServerState, caller: Identity
) -> Response | None:
    if not _is_prompt(state, body.name):
        return None
    service = _service(state, caller)
    service.update(body.name, description=body.description)
    return _prompt_reply(service, body.name)


def rename_model(
    body: m.RenameRegisteredModel, state: ServerState, caller: Identity
) -> Response | None:
    if not _is_prompt(state, body.name):
        return None
    raise InvalidInput(
        f"prompt {body.name!r} cannot be renamed: its URIs (prompts:/{body.name}/...) are how "
        "traces and evaluations name its versions; register the template under the new name"
    )


def delete_model(body: m.ModelRef, state: ServerState, caller: Identity) -> Response | None:
    if not _is_prompt(state, body.name):
        return None
    _service(state, caller).delete(body.name)
    return reply()


def latest_versions(
    body: m.LatestVersions, state: ServerState, caller: Identity
) -> Response | None:
    if not _is_prompt(state, body.name):
        return None
    service = _service(state, caller)
    latest = service.get(body.name).latest_version
    stages = {s.lower() for s in body.stages}
    versions = (
        []
        if latest is None or (stages and "none" not in stages)
        else [service.get_version(body.name, latest)]
    )
    return reply({"model_versions": [_version_json(v) for v in versions]})


def set_model_tag(body: m.ModelTag, state: ServerState, caller: Identity) -> Response | None:
    if not _is_prompt(state, body.name):
        return None
    if body.key != PROMPT_TAG:  # the marker is implied, not stored
        _service(state, caller).set_tag(body.name, body.key, body.value)
    return reply()


def delete_model_tag(body: m.ModelTagKey, state: ServerState, caller: Identity) -> Response | None:
    if not _is_prompt(state, body.name):
        return None
    if body.key == PROMPT_TAG:
        raise InvalidInput(f"{PROMPT_TAG!r} marks {body.name!r} as a prompt and cannot be removed")
    _service(state, caller).delete_tag(body.name, body.key)
    return reply()


def set_alias(body: m.SetAlias, state: ServerState, caller: Identity) -> Response | None:
    if not _is_prompt(state, body.name):
        return None
    change = _service(state, caller).set_alias(body.name, body.alias, body.number)
    if change.request is not None:
        request = change.request
        raise PermissionDenied(
            f"alias {body.alias!r} of prompt {body.name!r} is protected by its approval policy: "
            f"approval request {request.id} was opened to move it to version {request.version} "
            f"instead; an approver must approve it (`loopwright prompts approve {request.id}`) "
            "before it moves"
        )
    return reply()


def delete_alias(body: m.AliasRef, state: ServerState, caller: Identity) -> Response | None:
    if not _is_prompt(state, body.name):
        return None
    _service(state, caller).delete_alias(body.name, body.alias)
    return reply()


def get_by_alias(q: m.AliasRef, state: ServerState, caller: Identity) -> Response | None:
    if not _is_prompt(state, q.name):
        return None
    service = _service(state, caller)
    aliases = service.get(q.name).aliases
    if q.alias.lower() != "latest" and q.alias not in aliases:
        # MLflow's server wording, which its client turns into "Prompt alias … not found."
        # (scripts and MLflow's own prompt tests match that); then which aliases there are.
        raise NotFound(
            f"Registered model alias {q.alias} not found. Prompt {q.name!r} has the aliases: "
            f"{', '.join(sorted(aliases)) or 'none'}"
        )
    return reply({"model_version": _version_json(service.resolve(q.name, q.alias))})


# --- model versions --------------------------------------------------------------------------


def _json_tag(tags: Mapping[str, str], key: str) -> Any:
    if key not in tags:
        return None
    try:
        return json.loads(tags[key])
    except ValueError:
        raise InvalidInput(f"version tag {key!r} must hold JSON") from None


def create_version(
    body: m.CreateModelVersion, state: ServerState, caller: Identity
) -> Response | None:
    tags = {t.key: t.value for t in body.tags}
    if not _is_prompt(state, body.name):
        if tags.get(PROMPT_TAG, "").lower() == "true":
            raise NotFound(
                f"prompt {body.name!r} does not exist; create it first "
                "(mlflow.genai.register_prompt does)"
            )
        return None
    if TEXT_TAG not in tags:
        raise InvalidInput(
            f"{body.name!r} is a prompt: a new version needs its template in the "
            f"{TEXT_TAG!r} tag (mlflow.genai.register_prompt sends it)"
        )
    template: Any = tags[TEXT_TAG]
    if tags.get(TYPE_TAG) == "chat":
        template = _json_tag(tags, TEXT_TAG)
    version = _service(state, caller).register(
        body.name,
        template,
        commit_message=body.description,
        model_config=_json_tag(tags, MODEL_CONFIG_TAG),
        response_format=_json_tag(tags, RESPONSE_FORMAT_TAG),
        tags={k: v for k, v in tags.items() if k not in _INTERNAL},
    )
    return reply({"model_version": _version_json(version)})


def get_version(q: m.VersionRef, state: ServerState, caller: Identity) -> Response | None:
    if not _is_prompt(state, q.name):
        return None
    version = _service(state, caller).get_version(q.name, q.number)
    return reply({"model_version": _version_json(version)})


def search_versions(q: m.SearchRegistry, state: ServerState, caller: Identity) -> Response | None:
    """``name = 'x' AND tag.`mlflow.prompt.is_prompt` = 'true'`` (MLflow's prompt version
    search) over a prompt's versions, newest first."""
    parsed = parse(q.filter or "", VERSION_COLUMNS)
    names = [
        c.value
        for c in parsed.comparisons
        if c.entity == "attributes" and c.key == "name" and c.op == "=" and isinstance(c.value, str)
    ]
    prompted = any(c.entity == "tags" and c.key == PROMPT_TAG for c in parsed.comparisons)
    if not names or not prompted or not _is_prompt(state, names[0]):
        return None
    check = predicate(parsed)
    attributes = {"source": _SOURCE, "stage": "None", "status": "READY", "run_id": None}

    def lookup(version: PromptVersion) -> Callable[[str, str], Any]:
        def read(entity: str, key: str) -> Any:
            if entity == "tags":
                return version_tags(version).get(key)
            return {"name": version.name, "version": version.version, **attributes}.get(key)

        return read

    versions = _service(state, caller).versions(names[0])
    found = [v for v in reversed(versions) if check(lookup(v))]
    search = [q.filter or "", q.order_by]
    chosen, token = page(found, read_offset(q.page_token, search), q.max_results or 10_000, search)
    message: dict[str, Any] = {"model_versions": [_version_json(v) for v in chosen]}
    if token:
        message["next_page_token"] = token
    return reply(message)


def set_version_tag(body: m.VersionTag, state: ServerState, caller: Identity) -> Response | None:
    if not _is_prompt(state, body.name):
        return None
    if body.key in _INTERNAL:
        raise _immutable(body.name)
    _service(state, caller).set_version_tag(body.name, body.number, body.key, body.value)
    return reply()


def delete_version_tag(
    body: m.VersionTagKey, state: ServerState, caller: Identity
) -> Response | None:
    if not _is_prompt(state, body.name):
        return None
    if body.key in _INTERNAL:
        raise _immutable(body.name)
    _service(state, caller).delete_version_tag(body.name, body.number, body.key)
    return reply()


def _immutable(name: str) -> Conflict:
    return Conflict(
        f"versions of prompt {name!r} are immutable (their template, settings and commit message "
        "are what traces and evaluations refer to); register a new version instead"
    )


def refuse_version_change(
    body: m.VersionRef, state: ServerState, caller: Identity
) -> Response | None:
    """Updating, deleting or staging a prompt version: refused, naming why."""
    if not _is_prompt(state, body.name):
        return None
    raise _immutable(body.name)


def refuse_download(q: m.VersionRef, state: ServerState, caller: Identity) -> Response | None:
    if not _is_prompt(state, q.name):
        return None
    raise InvalidInput(
        f"{q.name!r} is a prompt: its versions have no files to download; "
        f"mlflow.genai.load_prompt('prompts:/{q.name}/{q.version}') reads the template"
    )
