"""What every run records without being asked: code version, Python environment, entry point.

Capture never raises and is cheap enough for run creation in a tight loop:

- :func:`capture_environment` reads the installed distributions once per process (``lru_cache``):
  packages installed while a process runs are not seen until it restarts.
- :func:`capture_code_version` runs ``git`` (one process, two when the tree is dirty) within a
  2 s budget; outside a repository, without git or on a timeout every field is ``None``.
  :func:`current_code_version` is the per-process cached form for run creation: it re-runs git
  at most every :data:`CODE_VERSION_TTL_S` seconds, so a long-lived notebook still notices edits.
- "Dirty" and the diff cover tracked files only (``git diff HEAD``, staged and unstaged):
  untracked files are neither a change to the commit nor reproducible from it, and scanning
  them is slow in large trees.

Example:
    >>> env = capture_environment()
    >>> len(env.id), env is capture_environment()
    (64, True)
"""

from __future__ import annotations

import functools
import json
import os
import platform
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata

from blake3 import blake3

__all__ = [
    "CODE_VERSION_TTL_S",
    "GIT_TIMEOUT_S",
    "MAX_DIFF_BYTES",
    "CodeVersion",
    "Environment",
    "RunContext",
    "capture_code_version",
    "capture_environment",
    "current_code_version",
    "entry_point",
]

GIT_TIMEOUT_S = 2.0
MAX_DIFF_BYTES = 5 * 1024 * 1024
CODE_VERSION_TTL_S = 5.0
_TRUNCATED = b"\n# loopwright: diff truncated at %d of %d bytes\n"
_NAME_SEPARATORS = re.compile(r"[-_.]+")


@dataclass(frozen=True)
class CodeVersion:
    """The git state of the code a run came from; every field is ``None`` outside a repository.

    ``branch`` is ``None`` on a detached HEAD; ``diff`` (tracked changes against HEAD, at most
    :data:`MAX_DIFF_BYTES`) is set only when ``dirty``.
    """

    commit: str | None = None
    branch: str | None = None
    dirty: bool | None = None
    diff: bytes | None = None


@dataclass(frozen=True)
class Environment:
    """A Python interpreter and its installed distributions, named by the hash of both.

    ``id`` is the BLAKE3 hex digest of the canonical JSON of ``python_version`` and the sorted
    ``packages`` (normalized name -> version), so equal environments share one row.
    """

    id: str
    python_version: str
    packages: dict[str, str]

    @classmethod
    def of(cls, python_version: str, packages: Mapping[str, str]) -> Environment:
        """The environment of ``python_version`` with ``packages``, its id computed from both."""
        ordered = dict(sorted(packages.items()))
        document = json.dumps(
            {"packages": ordered, "python_version": python_version},
            sort_keys=True,
            separators=(",", ":"),
        )
        digest = blake3(document.encode("utf-8")).hexdigest()
        return cls(id=digest, python_version=python_version, packages=ordered)

    @functools.cached_property
    def packages_json(self) -> str:
        """``packages`` as compact JSON with sorted keys (the ``environments`` row's form)."""
        return json.dumps(self.packages, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class RunContext:
    """Where a run executes, when that is not this process: a server records a remote client's.

    The environment's id is always computed from its content (:meth:`Environment.of`), so a
    client cannot attach another environment's id to its runs.
    """

    host: str | None = None
    entry_point: str | None = None
    code: CodeVersion = CodeVersion()
    environment: Environment | None = None


# --- code version -------------------------------------------------------------------------------


def _git(args: list[str], cwd: str, deadline: float) -> bytes | None:
    """``git args`` in ``cwd``: its stdout, or ``None`` on any failure or past ``deadline``."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return None
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    try:
        # A session of its own, so that a timeout also kills whatever git started (hooks,
        # helpers) instead of waiting for them to release the pipe.
        proc = subprocess.Popen(
            ["git", *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except (OSError, ValueError):
        return None
    try:
        out, _ = proc.communicate(timeout=remaining)
    except subprocess.TimeoutExpired:
        _kill(proc)
        return None
    return out if proc.returncode == 0 else None


def _kill(proc: subprocess.Popen[bytes]) -> None:
    try:
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except OSError:
        pass  # already gone
    if proc.stdout is not None:
        proc.stdout.close()
    proc.wait()


def _truncate(diff: bytes) -> bytes:
    if len(diff) <= MAX_DIFF_BYTES:
        return diff
    marker = _TRUNCATED % (MAX_DIFF_BYTES, len(diff))
    return diff[: MAX_DIFF_BYTES - len(marker)] + marker


def capture_code_version(path: str | os.PathLike[str] | None = None) -> CodeVersion:
    """The git commit, branch, dirtiness and diff of the repository holding ``path``.

    Args:
        path: a folder (or file) inside the repository; the current directory by default.

    Never raises: outside a repository, without git or when git takes longer than
    :data:`GIT_TIMEOUT_S` the result is ``CodeVersion()`` (all ``None``).
    """
    deadline = time.monotonic() + GIT_TIMEOUT_S
    folder = os.fspath(path) if path is not None else os.getcwd()
    if os.path.isfile(folder):
        folder = os.path.dirname(folder) or "."
    if not os.path.isdir(folder):
        return CodeVersion()
    status = _git(
        ["status", "--porcelain=v2", "--branch", "--untracked-files=no", "-z"], folder, deadline
    )
    if status is None:
        return CodeVersion()
    commit = branch = None
    dirty = False
    for entry in status.split(b"\0"):
        if entry.startswith(b"# branch.oid "):
            oid = entry[len(b"# branch.oid ") :].decode("ascii", "replace")
            commit = None if oid == "(initial)" else oid
        elif entry.startswith(b"# branch.head "):
            head = entry[len(b"# branch.head ") :].decode("utf-8", "replace")
            branch = None if head == "(detached)" else head
        elif entry and not entry.startswith(b"#"):
            dirty = True
    diff = None
    if dirty and commit is not None:
        raw = _git(
            ["diff", "HEAD", "--no-color", "--no-ext-diff", "--no-textconv"], folder, deadline
        )
        diff = None if raw is None else _truncate(raw)
    return CodeVersion(commit=commit, branch=branch, dirty=dirty, diff=diff)


def _code_root() -> str:
    """Where the running code lives: the script's folder, else the working directory."""
    main = sys.modules.get("__main__")
    script = getattr(main, "__file__", None)
    if isinstance(script, str) and script and "ipykernel" not in sys.modules:
        return os.path.dirname(os.path.abspath(script))
    return os.getcwd()


_code_cache: dict[str, tuple[float, CodeVersion]] = {}
_code_lock = threading.Lock()


def current_code_version(
    path: str | os.PathLike[str] | None = None, *, max_age_s: float = CODE_VERSION_TTL_S
) -> CodeVersion:
    """:func:`capture_code_version` of ``path``'s repository, cached for ``max_age_s`` seconds.

    By default ``path`` is the running code: the ``__main__`` script's folder (``python
    train.py``, ``python -m pkg``), or the working directory in a REPL or notebook.
    """
    root = _code_root() if path is None else os.path.abspath(path)
    now = time.monotonic()
    with _code_lock:
        cached = _code_cache.get(root)
        if cached is not None and now - cached[0] < max_age_s:
            return cached[1]
    code = capture_code_version(root)
    with _code_lock:
        _code_cache[root] = (time.monotonic(), code)
    return code


# --- environment --------------------------------------------------------------------------------


def _canonical_name(name: str) -> str:
    return _NAME_SEPARATORS.sub("-", name).lower()  # PEP 503


@functools.lru_cache(maxsize=1)
def capture_environment() -> Environment:
    """The interpreter version and installed distributions, read once per process."""
    packages: dict[str, str] = {}
    for dist in metadata.distributions():
        # PackageMetadata declares no .get(), and a missing key warns on Python 3.12+.
        meta = dist.metadata
        name = meta["Name"] if "Name" in meta else None  # noqa: SIM401
        version = meta["Version"] if "Version" in meta else None  # noqa: SIM401
        if not name or not version:
            continue  # broken metadata (a half-removed install): nothing to record
        # The first on sys.path wins, as it does for imports.
        packages.setdefault(_canonical_name(name), version)
    return Environment.of(platform.python_version(), packages)


# --- entry point --------------------------------------------------------------------------------


def entry_point() -> str | None:
    """The script or module being run.

    ``python train.py`` gives ``'train.py'`` (as typed), ``python -m pkg`` gives ``'pkg'``,
    ``python -c`` gives ``'<command>'``, a REPL or notebook gives ``'<interactive>'``.
    """
    if "ipykernel" in sys.modules or hasattr(sys, "ps1"):
        return "<interactive>"
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name:
        return str(spec.name).removesuffix(".__main__")
    argv0 = sys.argv[0] if sys.argv else ""
    if argv0 == "-c":
        return "<command>"
    if not argv0 or argv0 == "-":
        return "<interactive>"
    return argv0
