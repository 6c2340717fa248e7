"""What a server runs of the scorers its callers registered (``Settings.hosted``).

An editor registers a scorer as data; a server-side pass (a trace monitor, its re-evaluation)
then runs it inside the server. Importing a module runs its code, and calling an arbitrary
function is arbitrary code, so a server imports code scorers only from the modules an admin
listed in ``scorer_modules`` and runs only ``@lw.scorer`` objects with Python source. A judge
never reads the server's environment (``api_key_env`` would send a server secret to an
endpoint the editor chose), and only approved judge versions run. Embedded use (the user's own
process) is not restricted: there the scorers are the user's own code.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Sequence
from typing import Any

from ..errors import Conflict, InvalidInput
from .entities import ScorerVersion
from .scorers import Scorer

__all__ = ["check_code_reference", "check_judge", "check_loaded_code"]

_SETTING = "scorer_modules (LOOPWRIGHT_SCORER_MODULES, loopwright.toml)"


def _allowed(module: str, modules: Sequence[str]) -> bool:
    return any(module == m or module.startswith(m + ".") for m in modules)


def check_code_reference(version: ScorerVersion, modules: Sequence[str]) -> None:
    """Refuse, before importing anything, a code scorer outside the admin's modules."""
    module, _, attr = version.reference.partition(":")
    if not modules:
        raise InvalidInput(
            f"scorer {version.ref}: this server runs no code scorers; an admin lists the modules "
            f"it may import in the server setting {_SETTING}, or run the scorer in your own "
            "process (an embedded client)"
        )
    if not attr or not _allowed(module, modules):
        raise InvalidInput(
            f"scorer {version.ref}: module {module!r} is not one this server may import "
            f"(setting {_SETTING}: {', '.join(modules)}); ask an admin to add it"
        )


def check_loaded_code(version: ScorerVersion, found: Any, modules: Sequence[str]) -> Scorer:
    """The imported object must be an ``@lw.scorer`` code scorer over a Python function of an
    allowed module (not a builtin, a class or any other callable)."""
    if type(found) is not Scorer:
        raise InvalidInput(
            f"scorer {version.ref}: {version.reference} is a {type(found).__name__}, not an "
            "@lw.scorer object; a server runs only functions decorated with @lw.scorer"
        )
    func = found.func
    if not isinstance(func, types.FunctionType) or not _allowed(func.__module__, modules):
        raise InvalidInput(
            f"scorer {version.ref}: {version.reference} does not wrap a Python function of an "
            f"allowed module (setting {_SETTING})"
        )
    try:
        inspect.getsource(func)
    except (OSError, TypeError) as exc:
        raise InvalidInput(
            f"scorer {version.ref}: the source of {version.reference} is not at hand on the "
            "server; its digest cannot be checked"
        ) from exc
    return found


def check_judge(version: ScorerVersion) -> None:
    """A judge run by the server: approved, and without a credential from its environment."""
    if version.config.get("api_key_env"):
        raise InvalidInput(
            f"judge {version.ref}: api_key_env is for your own process only; a server never "
            "sends its environment to a judge endpoint. Register a version without it (an "
            "endpoint that needs no key, such as a gateway route)"
        )
    if not version.approved:
        raise Conflict(
            f"judge {version.ref} is not approved; the server runs approved judge versions only "
            f"(`loopwright eval scorers request-approval {version.name} {version.version}`)"
        )
