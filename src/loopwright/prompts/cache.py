"""``client.prompts``: the prompt registry with a client-side cache of loaded versions.

Staleness, stated: a version loaded by number (``prompts:/greet/3``) is immutable and cached
for the life of the client, never stale. A version loaded by alias or ``@latest`` is cached
for ``cache_ttl`` seconds (default 60, MLflow's default; 0 disables): a move made elsewhere
shows up here within that time. Moves made through this same client clear the prompt's alias
entries at once. The cache holds at most ``max_entries`` versions (least recently used go).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from ..errors import InvalidInput
from ..registry.entities import ApprovalPolicy, ApprovalRequest
from .entities import Prompt, PromptAliasChange, PromptVersion
from .protocol import Prompts
from .uris import parse_prompt_uri

__all__ = ["DEFAULT_CACHE_TTL", "CachedPrompts"]

DEFAULT_CACHE_TTL = 60.0


class CachedPrompts:
    """The :class:`~loopwright.prompts.protocol.Prompts` of a backend, with ``load`` cached
    (see the module's docstring) and ``format(uri, **values)``.

    Example:
        >>> import loopwright as lw
        >>> client = lw.connect(home="lw-doc-prompt-cache")
        >>> _ = client.prompts.register("greet", "Hi {{ name }}")
        >>> client.prompts.format("prompts:/greet@latest", name="Ada")
        'Hi Ada'
    """

    def __init__(
        self, backend: Prompts, *, cache_ttl: float = DEFAULT_CACHE_TTL, max_entries: int = 1024
    ) -> None:
        self.backend = backend
        self.cache_ttl = _check_ttl(cache_ttl)
        self._max = max_entries
        self._versions: OrderedDict[tuple[str, int], PromptVersion] = OrderedDict()
        self._aliases: dict[tuple[str, str], tuple[float, PromptVersion]] = {}
        self._lock = threading.Lock()

    def load(self, uri: str, *, cache_ttl: float | None = None) -> PromptVersion:
        """The version ``uri`` names (``prompts:/name/3``, ``prompts:/name@alias``), from the
        cache when fresh: versions always, aliases for ``cache_ttl`` seconds (None: the
        client's, 0: read now)."""
        name, ref = parse_prompt_uri(uri)
        ttl = self.cache_ttl if cache_ttl is None else _check_ttl(cache_ttl)
        now = time.monotonic()
        with self._lock:
            if isinstance(ref, int):
                found = self._versions.get((name, ref))
                if found is not None:
                    self._versions.move_to_end((name, ref))
                    return found
            elif ttl > 0:
                entry = self._aliases.get((name, ref))
                if entry is not None and now - entry[0] < ttl:
                    return entry[1]
        version = self.backend.resolve(name, ref)
        with self._lock:
            self._versions[(name, version.version)] = version
            if len(self._versions) > self._max:
                self._versions.popitem(last=False)
            if isinstance(ref, str) and ttl > 0:
                if len(self._aliases) >= self._max:
                    self._aliases.clear()
                self._aliases[(name, ref)] = (now, version)
        return version

    def format(self, uri: str, /, **values: Any) -> str | list[dict[str, Any]]:
        """``load(uri).format(**values)``: the text or chat messages to send a model."""
        return self.load(uri).format(**values)

    def clear_cache(self) -> None:
        with self._lock:
            self._versions.clear()
            self._aliases.clear()

    def _forget_aliases(self, name: str) -> None:
        with self._lock:
            for key in [key for key in self._aliases if key[0] == name]:
                del self._aliases[key]

    # --- the backend's methods; moves and new versions clear the prompt's alias entries ------

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
        """A new immutable version of ``name`` (see ``PromptService.register``)."""
        version = self.backend.register(
            name,
            template,
            commit_message=commit_message,
            model_config=model_config,
            response_format=response_format,
            tags=tags,
            description=description,
            skip_if_unchanged=skip_if_unchanged,
        )
        self._forget_aliases(name)  # @latest moved
        return version

    def set_alias(
        self, name: str, alias: str, version: int, *, comment: str | None = None
    ) -> PromptAliasChange:
        change = self.backend.set_alias(name, alias, version, comment=comment)
        self._forget_aliases(name)
        return change

    def delete_alias(self, name: str, alias: str) -> None:
        self.backend.delete_alias(name, alias)
        self._forget_aliases(name)

    def approve(self, request_id: str, comment: str | None = None) -> ApprovalRequest:
        request = self.backend.approve(request_id, comment)
        self._forget_aliases(request.model)
        return request

    def delete(self, name: str) -> None:
        self.backend.delete(name)
        with self._lock:
            for key in [key for key in self._versions if key[0] == name]:
                del self._versions[key]
        self._forget_aliases(name)

    def create(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        policy: ApprovalPolicy | None = None,
    ) -> Prompt:
        return self.backend.create(name, description=description, tags=tags, policy=policy)

    def get(self, name: str) -> Prompt:
        return self.backend.get(name)

    def search(
        self,
        query: str | None = None,
        *,
        tags: Mapping[str, str] | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Prompt]:
        return self.backend.search(query, tags=tags, limit=limit, offset=offset)

    def update(self, name: str, *, description: str | None) -> Prompt:
        return self.backend.update(name, description=description)

    def set_policy(self, name: str, policy: ApprovalPolicy) -> Prompt:
        return self.backend.set_policy(name, policy)

    def set_tag(self, name: str, key: str, value: str) -> None:
        self.backend.set_tag(name, key, value)

    def delete_tag(self, name: str, key: str) -> None:
        self.backend.delete_tag(name, key)

    def set_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        self.backend.set_version_tag(name, version, key, value)

    def delete_version_tag(self, name: str, version: int, key: str) -> None:
        self.backend.delete_version_tag(name, version, key)

    def get_version(self, name: str, version: int) -> PromptVersion:
        return self.backend.get_version(name, version)

    def resolve(self, name: str, ref: int | str) -> PromptVersion:
        """The version ``ref`` names, read now (``load`` is the cached way)."""
        return self.backend.resolve(name, ref)

    def versions(self, name: str) -> list[PromptVersion]:
        return self.backend.versions(name)

    def diff(self, name: str, v1: int | str, v2: int | str) -> str:
        return self.backend.diff(name, v1, v2)

    def requests(
        self, status: str | None = "pending", prompt: str | None = None
    ) -> list[ApprovalRequest]:
        return self.backend.requests(status, prompt)

    def get_request(self, request_id: str) -> ApprovalRequest:
        return self.backend.get_request(request_id)

    def reject(self, request_id: str, comment: str) -> ApprovalRequest:
        return self.backend.reject(request_id, comment)


def _check_ttl(ttl: object) -> float:
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not 0 <= ttl < float("inf"):
        raise InvalidInput(f"cache_ttl must be a number of seconds >= 0 (0: no cache), not {ttl!r}")
    return float(ttl)
