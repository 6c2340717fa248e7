"""Settings resolution with one fixed precedence.

explicit arguments > environment (``LOOPWRIGHT_*``) > ``loopwright.toml`` (found by walking up
from the working directory) > defaults.

The default home is ``.loopwright/`` beside the nearest ``loopwright.toml`` or existing
``.loopwright/`` folder above the working directory, else in the working directory itself (the way
git finds ``.git``). The database and blob store live inside the home unless configured elsewhere.

Example:
    >>> settings = resolve_settings(home="/tmp/lw-example")
    >>> settings.db_uri
    'sqlite:////tmp/lw-example/loopwright.db'
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

__all__ = [
    "APPROVAL_POLICIES",
    "CONFIG_FILE",
    "DEFAULT_DATA_LINK",
    "HOME_DIR",
    "LINK_MODES",
    "Settings",
    "resolve_settings",
]

CONFIG_FILE = "loopwright.toml"
HOME_DIR = ".loopwright"

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# How `data add` gives a file's bytes a name in a local blob store (store/_links.py), and the
# default order to try them in: a reflink where the filesystem has them, else a copy.
LINK_MODES = ("reflink", "hardlink", "copy")
DEFAULT_DATA_LINK = ("reflink", "copy")
# What a registered model created without a policy of its own gets: ``protect`` (the Production
# stage and the ``champion`` alias need an approver) or ``none`` (nothing needs approval).
APPROVAL_POLICIES = ("protect", "none")


@dataclass(frozen=True)
class _Key:
    name: str
    env: str
    help: str
    is_path: bool = False


_KEYS: tuple[_Key, ...] = (
    _Key("home", "LOOPWRIGHT_HOME", "folder holding the embedded database and blobs", is_path=True),
    _Key("db_uri", "LOOPWRIGHT_DB_URI", "SQLAlchemy URL of the metadata store"),
    _Key("blob_uri", "LOOPWRIGHT_BLOB_URI", "folder or fsspec URL of the blob store"),
    _Key("server_uri", "LOOPWRIGHT_SERVER_URI", "http(s) URL of a Loopwright server to talk to"),
    _Key("token", "LOOPWRIGHT_TOKEN", "API token sent to the server"),
    _Key("log_level", "LOOPWRIGHT_LOG_LEVEL", "logging level of the loopwright logger"),
    _Key("user", "LOOPWRIGHT_USER", "who local changes are recorded as (default: the OS user)"),
    _Key("data_link", "LOOPWRIGHT_DATA_LINK", "data add: link modes to try, e.g. reflink,copy"),
    _Key("max_request_bytes", "LOOPWRIGHT_MAX_REQUEST_BYTES", "server: largest JSON request body"),
    _Key("max_upload_bytes", "LOOPWRIGHT_MAX_UPLOAD_BYTES", "server: largest streamed upload"),
    _Key("query_timeout", "LOOPWRIGHT_QUERY_TIMEOUT", "seconds a validation query may run"),
    _Key("query_memory", "LOOPWRIGHT_QUERY_MEMORY", "memory a validation query may use"),
    _Key(
        "default_artifact_root",
        "LOOPWRIGHT_DEFAULT_ARTIFACT_ROOT",
        "server: where new experiments keep artifacts (mlflow-artifacts:/ or a local folder)",
    ),
    _Key(
        "artifact_roots",
        "LOOPWRIGHT_ARTIFACT_ROOTS",
        "server: local folders (comma-separated) experiments may name as artifact_location",
    ),
    _Key(
        "default_approval_policy",
        "LOOPWRIGHT_DEFAULT_APPROVAL_POLICY",
        "policy of models created without one: protect (Production, champion) or none",
    ),
    _Key(
        "prediction_log",
        "LOOPWRIGHT_PREDICTION_LOG",
        "folder or fsspec URL of the prediction log (default: <blob store>/predictions)",
    ),
    _Key(
        "online_store",
        "LOOPWRIGHT_ONLINE_STORE",
        "feature online store: sqlite:///path or redis://host:port/db (default: <home>/online.db)",
    ),
    _Key(
        "scorer_modules",
        "LOOPWRIGHT_SCORER_MODULES",
        "server: modules (comma-separated) whose @lw.scorer code scorers the server may run",
    ),
)
# Numeric settings: sizes take a unit (``512MB``, ``5GiB``) or a number of bytes.
_SIZES = ("max_request_bytes", "max_upload_bytes", "query_memory")
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?", re.IGNORECASE)
_DEFAULT_LIMITS = {
    "max_request_bytes": str(32 << 20),
    "max_upload_bytes": str(5 << 30),
    "query_timeout": "300",
    "query_memory": str(1 << 30),
}
_KEYS_BY_NAME = {key.name: key for key in _KEYS}
_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


@dataclass(frozen=True)
class Settings:
    """Every resolved setting, and where each came from (``sources[key]``)."""

    home: Path
    db_uri: str
    blob_uri: str
    server_uri: str | None
    token: str | None = field(repr=False)
    log_level: str
    config_file: Path | None
    user: str | None = None
    sources: Mapping[str, str] = field(default_factory=dict)
    data_link: tuple[str, ...] = DEFAULT_DATA_LINK
    max_request_bytes: int = 32 << 20  # JSON bodies; uploads stream and take max_upload_bytes
    max_upload_bytes: int = 5 << 30
    query_timeout: float = 300.0  # seconds, for the DuckDB queries of data validation
    query_memory: int = 1 << 30
    # None: artifacts are served by this server (``mlflow-artifacts:/``); else an absolute local
    # folder whose ``<experiment id>`` subfolders hold new experiments' artifacts.
    default_artifact_root: str | None = None
    # Absolute local folders an experiment's own ``artifact_location`` may lie in (the default
    # root is allowed too); empty: clients cannot choose a location.
    artifact_roots: tuple[str, ...] = ()
    # "protect" or "none" (APPROVAL_POLICIES); a model keeps the policy it was created with.
    default_approval_policy: str = "protect"
    # Where `serve` writes and the server reads the prediction log; None: the default place
    # (serving.prediction_log.log_location).
    prediction_log: str | None = None
    # The feature store's online store: ``sqlite:///path`` or ``redis://host:port/db``; None:
    # a SQLite file ``<home>/online.db`` (features.online.open.open_online_store).
    online_store: str | None = None
    # Modules (and their submodules) whose ``@lw.scorer`` objects a server runs in its own
    # monitor passes; empty: a server runs no code scorer (importing is running code).
    scorer_modules: tuple[str, ...] = ()
    # True in a server process (set by the server, not a setting): scorers chosen by callers
    # run under the server's rules (scorer_modules, no judge credentials from its environment).
    hosted: bool = False

    @property
    def is_embedded(self) -> bool:
        """True when no server is configured and the client talks to the stores directly."""
        return self.server_uri is None

    def describe(self) -> list[tuple[str, str, str]]:
        """``(key, value, source)`` rows for display; the token is masked."""
        rows = []
        for key in _KEYS:
            value = getattr(self, key.name)
            shown = "" if value is None else str(value)
            if isinstance(value, tuple):
                shown = ",".join(value)
            if key.name == "token" and value:
                shown = value[:4] + "…" if len(value) > 8 else "***"
            rows.append((key.name, shown, self.sources.get(key.name, "default")))
        return rows


def _find_config_root(start: Path) -> tuple[Path | None, Path | None]:
    """Walk up from ``start``; return (folder holding the project, its loopwright.toml or None)."""
    for folder in (start, *start.parents):
        candidate = folder / CONFIG_FILE
        if candidate.is_file():
            return folder, candidate
        if (folder / HOME_DIR).is_dir():
            return folder, None
    return None, None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix the file or remove it") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from exc
    # Accept either top-level keys or a [loopwright] table, not both.
    table = data.get("loopwright", data)
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [loopwright] must be a table of settings")
    if table is not data and len(data) > 1:
        stray = sorted(set(data) - {"loopwright"})
        raise ConfigError(
            f"{path}: setting(s) {', '.join(map(repr, stray))} stand outside the [loopwright] "
            "table; move them into it (or drop the table header)"
        )
    unknown = sorted(set(table) - set(_KEYS_BY_NAME))
    if unknown:
        raise ConfigError(
            f"{path}: unknown setting(s) {', '.join(map(repr, unknown))}; "
            f"known settings: {', '.join(_KEYS_BY_NAME)}"
        )
    for name, value in table.items():
        if name in ("data_link", "artifact_roots", "scorer_modules") and isinstance(value, list):
            table[name] = ",".join(map(str, value))  # data_link = ["reflink", "copy"]
        elif name in (*_SIZES, "query_timeout") and type(value) in (int, float):
            table[name] = str(value)
        elif not isinstance(value, str):
            raise ConfigError(
                f"{name} (file {path}): expected a string, got {type(value).__name__} {value!r}"
            )
    return table


def _check_value(name: str, value: str, source: str) -> str:
    """Validate one raw string value; the error names the key and where it came from."""
    where = f"{name} ({source})"
    if "\x00" in value:
        raise ConfigError(f"{where}: contains a NUL byte")
    if name == "db_uri":
        if "://" not in value:
            raise ConfigError(
                f"{where}: {value!r} is not a database URL; "
                "use sqlite:///path/to/loopwright.db or postgresql://user@host/db"
            )
        scheme = value.split("://", 1)[0].split("+", 1)[0]
        if scheme not in ("sqlite", "postgresql", "postgres"):
            raise ConfigError(
                f"{where}: database scheme {scheme!r} is not supported; use sqlite or postgresql"
            )
    elif name == "server_uri":
        if not value.startswith(("http://", "https://")):
            raise ConfigError(f"{where}: {value!r} must start with http:// or https://")
    elif name == "log_level":
        if value.upper() not in _LOG_LEVELS:
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(_LOG_LEVELS)}")
        return value.upper()
    elif name == "user" and (not value.strip() or len(value) > 200):
        raise ConfigError(f"{where}: a user name must be 1-200 characters")
    elif name in ("home", "blob_uri", "prediction_log") and not value.strip():
        raise ConfigError(f"{where}: must not be empty; remove the setting to use the default")
    elif name == "default_artifact_root":
        return _artifact_root(value.strip(), where, served_ok=True)
    elif name == "online_store":
        if not value.startswith(("sqlite:///", "redis://", "rediss://")):
            raise ConfigError(
                f"{where}: {value!r} is not an online store; use sqlite:///path/to/online.db "
                "or redis://host:port/db (remove the setting for <home>/online.db)"
            )
    elif name == "artifact_roots":
        roots = [_artifact_root(r.strip(), where, served_ok=False) for r in value.split(",")]
        return ",".join(root for root in roots if root)
    elif name == "scorer_modules":
        modules = [m.strip() for m in value.split(",") if m.strip()]
        if not all(_MODULE.fullmatch(m) for m in modules):
            raise ConfigError(
                f"{where}: {value!r} is not a list of module names; give dotted names such as "
                "myteam.scorers,acme.eval (comma-separated)"
            )
        return ",".join(modules)
    elif name == "default_approval_policy":
        if value.strip().lower() not in APPROVAL_POLICIES:
            raise ConfigError(
                f"{where}: {value!r} is not one of {', '.join(APPROVAL_POLICIES)} (protect: "
                "Production and the champion alias need an approver; none: nothing does)"
            )
        return value.strip().lower()
    elif name == "data_link":
        modes = [mode.strip().lower() for mode in value.split(",")]
        if not all(mode in LINK_MODES for mode in modes):
            raise ConfigError(
                f"{where}: {value!r} is not a list of link modes; give one or more of "
                f"{', '.join(LINK_MODES)} in the order to try them, e.g. reflink,copy"
            )
        return ",".join(modes)
    elif name in _SIZES:
        return str(_size(value, where))
    elif name == "query_timeout":
        try:
            seconds = float(value)
        except ValueError:
            seconds = 0.0
        if not 0 < seconds < 1e9:
            raise ConfigError(f"{where}: {value!r} is not a positive number of seconds")
    return value


def _artifact_root(value: str, where: str, *, served_ok: bool) -> str:
    """A local folder (path or ``file://`` URI, as a path), or ``mlflow-artifacts:/``."""
    from urllib.parse import unquote, urlsplit

    if served_ok and value.rstrip("/") in ("mlflow-artifacts:", ""):
        return "mlflow-artifacts:/"
    if value.startswith("file:"):
        parts = urlsplit(value)
        if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
            raise ConfigError(
                f"{where}: {value!r} is not a local folder; write file:///absolute/path"
            )
        return unquote(parts.path)
    if "://" in value or value.startswith("mlflow-artifacts:"):
        served = "mlflow-artifacts:/ (this server's blob store) or " if served_ok else ""
        raise ConfigError(
            f"{where}: {value!r} is not supported; give {served}a local folder "
            "(a path or file:///absolute/path)"
        )
    return value


def _size(value: str, where: str) -> int:
    """Bytes in ``"1048576"``, ``"512MB"`` or ``"5GiB"`` (KB = 1000 bytes, KiB = 1024)."""
    match = _SIZE.fullmatch(value.strip())
    if match is None or float(match[1]) <= 0:
        raise ConfigError(f"{where}: {value!r} is not a size; write bytes or e.g. 512MB, 5GiB")
    unit = (match[2] or "B").upper()
    scale = 1024 if "I" in unit else 1000
    return int(float(match[1]) * scale ** "BKMGT".index(unit[0]))


def _anchor(name: str, value: str, base: Path) -> str:
    """Make a relative local path absolute against ``base`` (the file's folder or the cwd)."""
    if name in ("home", "blob_uri", "prediction_log") and "://" not in value:
        return str((base / Path(value).expanduser()).resolve())
    if name == "default_artifact_root" and value != "mlflow-artifacts:/":
        return str((base / Path(value).expanduser()).resolve())
    if name == "artifact_roots":
        roots = (str((base / Path(r).expanduser()).resolve()) for r in value.split(",") if r)
        return ",".join(roots)
    if name in ("db_uri", "online_store") and value.startswith("sqlite:///"):
        path = value[len("sqlite:///") :]
        if path and path != ":memory:" and not path.startswith(("/", "file:")):
            return f"sqlite:///{(base / Path(path).expanduser()).resolve()}"
    return value


def resolve_settings(
    *,
    home: str | os.PathLike[str] | None = None,
    db_uri: str | None = None,
    blob_uri: str | None = None,
    server_uri: str | None = None,
    token: str | None = None,
    log_level: str | None = None,
    user: str | None = None,
    data_link: str | None = None,
    max_request_bytes: int | str | None = None,
    max_upload_bytes: int | str | None = None,
    query_timeout: float | str | None = None,
    query_memory: int | str | None = None,
    default_artifact_root: str | None = None,
    artifact_roots: str | None = None,
    default_approval_policy: str | None = None,
    prediction_log: str | None = None,
    online_store: str | None = None,
    scorer_modules: str | None = None,
    cwd: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Resolve every setting from arguments, environment, ``loopwright.toml`` and defaults.

    Raises:
        ConfigError: a value is malformed; the message names the key and its source.
    """
    env = os.environ if environ is None else environ
    start = Path(cwd or os.getcwd()).resolve()
    project_root, config_file = _find_config_root(start)
    file_values = _read_toml(config_file) if config_file else {}

    arguments = {
        "home": None if home is None else os.fspath(home),
        "db_uri": db_uri,
        "blob_uri": blob_uri,
        "server_uri": server_uri,
        "token": token,
        "log_level": log_level,
        "user": user,
        "data_link": data_link,
        "default_artifact_root": default_artifact_root,
        "artifact_roots": artifact_roots,
        "default_approval_policy": default_approval_policy,
        "prediction_log": prediction_log,
        "online_store": online_store,
        "scorer_modules": scorer_modules,
    }
    limits = (max_request_bytes, max_upload_bytes, query_timeout, query_memory)
    for name, given in zip(_DEFAULT_LIMITS, limits, strict=True):
        arguments[name] = None if given is None else str(given)
    values: dict[str, str | None] = {}
    sources: dict[str, str] = {}
    for key in _KEYS:
        raw: str | None = arguments[key.name]
        source, base = "argument", start
        if raw is None and env.get(key.env):
            raw, source = env[key.env], f"environment {key.env}"
        if raw is None and key.name in file_values and config_file is not None:
            # Relative paths in the file are relative to the file, not the working directory.
            raw, source, base = file_values[key.name], f"file {config_file}", config_file.parent
        if raw is None:
            values[key.name] = None
            sources[key.name] = "default"
            continue
        values[key.name] = _anchor(key.name, _check_value(key.name, raw, source), base)
        sources[key.name] = source

    home_value = values["home"]
    home_path = Path(home_value) if home_value else (project_root or start) / HOME_DIR
    if values["db_uri"] is None:
        values["db_uri"] = f"sqlite:///{home_path / 'loopwright.db'}"
        sources["db_uri"] = "default (inside home)"
    if values["blob_uri"] is None:
        values["blob_uri"] = str(home_path / "blobs")
        sources["blob_uri"] = "default (inside home)"

    return Settings(
        home=home_path,
        db_uri=str(values["db_uri"]),
        blob_uri=str(values["blob_uri"]),
        server_uri=values["server_uri"],
        token=values["token"],
        log_level=values["log_level"] or "WARNING",
        config_file=config_file,
        user=values["user"],
        sources=sources,
        data_link=tuple((values["data_link"] or ",".join(DEFAULT_DATA_LINK)).split(",")),
        max_request_bytes=int(values["max_request_bytes"] or _DEFAULT_LIMITS["max_request_bytes"]),
        max_upload_bytes=int(values["max_upload_bytes"] or _DEFAULT_LIMITS["max_upload_bytes"]),
        query_timeout=float(values["query_timeout"] or _DEFAULT_LIMITS["query_timeout"]),
        query_memory=int(values["query_memory"] or _DEFAULT_LIMITS["query_memory"]),
        default_artifact_root=(
            None
            if values["default_artifact_root"] in (None, "mlflow-artifacts:/")
            else values["default_artifact_root"]
        ),
        artifact_roots=tuple(filter(None, (values["artifact_roots"] or "").split(","))),
        default_approval_policy=values["default_approval_policy"] or "protect",
        prediction_log=values["prediction_log"],
        online_store=values["online_store"],
        scorer_modules=tuple(filter(None, (values["scorer_modules"] or "").split(","))),
    )
