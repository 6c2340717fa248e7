"""Settings resolution: arguments > environment > loopwright.toml > defaults, and loud failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopwright.config import CONFIG_FILE, HOME_DIR, resolve_settings
from loopwright.errors import ConfigError

LIMITS = ("max_request_bytes", "max_upload_bytes", "query_timeout", "query_memory")
KEYS = (
    "home",
    "db_uri",
    "blob_uri",
    "server_uri",
    "token",
    "log_level",
    "user",
    "data_link",
    *LIMITS,
    "default_artifact_root",
    "artifact_roots",
    "default_approval_policy",
    "prediction_log",
    "online_store",
    "scorer_modules",
)
ENV = {
    "home": "LOOPWRIGHT_HOME",
    "db_uri": "LOOPWRIGHT_DB_URI",
    "blob_uri": "LOOPWRIGHT_BLOB_URI",
    "server_uri": "LOOPWRIGHT_SERVER_URI",
    "token": "LOOPWRIGHT_TOKEN",
    "log_level": "LOOPWRIGHT_LOG_LEVEL",
    "user": "LOOPWRIGHT_USER",
    "data_link": "LOOPWRIGHT_DATA_LINK",
    **{key: f"LOOPWRIGHT_{key.upper()}" for key in LIMITS},
    "default_artifact_root": "LOOPWRIGHT_DEFAULT_ARTIFACT_ROOT",
    "artifact_roots": "LOOPWRIGHT_ARTIFACT_ROOTS",
    "default_approval_policy": "LOOPWRIGHT_DEFAULT_APPROVAL_POLICY",
    "prediction_log": "LOOPWRIGHT_PREDICTION_LOG",
    "online_store": "LOOPWRIGHT_ONLINE_STORE",
    "scorer_modules": "LOOPWRIGHT_SCORER_MODULES",
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project folder with a nested working directory below it."""
    root = tmp_path.resolve() / "project"
    (root / "src" / "pkg" / "deep").mkdir(parents=True)
    return root


def _write_toml(folder: Path, text: str) -> Path:
    path = folder / CONFIG_FILE
    path.write_text(text, encoding="utf-8")
    return path


def _sources(settings: object) -> dict[str, str]:
    return {key: source for key, _, source in settings.describe()}  # type: ignore[attr-defined]


def _values(settings: object) -> dict[str, str]:
    return {key: value for key, value, _ in settings.describe()}  # type: ignore[attr-defined]


# --- defaults ----------------------------------------------------------------------------------


def test_defaults_put_everything_in_a_home_in_the_working_directory(tmp_path: Path) -> None:
    cwd = tmp_path.resolve() / "empty" / "nested"
    cwd.mkdir(parents=True)

    settings = resolve_settings(cwd=cwd, environ={})

    assert settings.home == cwd / HOME_DIR
    assert settings.db_uri == f"sqlite:///{cwd / HOME_DIR / 'loopwright.db'}"
    assert settings.blob_uri == str(cwd / HOME_DIR / "blobs")
    assert settings.server_uri is None
    assert settings.token is None
    assert settings.log_level == "WARNING"
    assert settings.config_file is None
    assert settings.is_embedded
    assert _sources(settings) == {
        "home": "default",
        "db_uri": "default (inside home)",
        "blob_uri": "default (inside home)",
        "server_uri": "default",
        "token": "default",
        "log_level": "default",
        "user": "default",
        "data_link": "default",
        **dict.fromkeys(LIMITS, "default"),
        "default_artifact_root": "default",
        "artifact_roots": "default",
        "default_approval_policy": "default",
        "prediction_log": "default",
        "online_store": "default",
        "scorer_modules": "default",
    }


def test_resolving_settings_creates_nothing(tmp_path: Path) -> None:
    cwd = tmp_path / "untouched"
    cwd.mkdir()
    resolve_settings(cwd=cwd, environ={})
    assert list(cwd.iterdir()) == []


def test_sources_has_an_entry_for_every_setting(tmp_path: Path) -> None:
    """The Settings docstring promises ``sources[key]`` for every resolved setting."""
    settings = resolve_settings(cwd=tmp_path, environ={})
    assert set(settings.sources) == set(KEYS)
    assert settings.sources["log_level"] == "default"


# --- precedence --------------------------------------------------------------------------------


def _levels(root: Path) -> dict[str, tuple[str, str, str, str]]:
    """key -> (argument value, environment value, file value as written, file value resolved)."""
    return {
        "home": (
            str(root / "arg-home"),
            str(root / "env-home"),
            "file-home",
            str(root / "file-home"),
        ),
        "db_uri": (
            f"sqlite:///{root / 'arg.db'}",
            f"sqlite:///{root / 'env.db'}",
            "sqlite:///file.db",  # relative: anchored at the file's folder
            f"sqlite:///{root / 'file.db'}",
        ),
        "blob_uri": ("s3://arg/blobs", "s3://env/blobs", "file-blobs", str(root / "file-blobs")),
        "server_uri": ("http://arg:1", "https://env:2", "http://file:3", "http://file:3"),
        "token": ("arg-token-0001", "env-token-0002", "file-token-003", "file-token-003"),
        "log_level": ("DEBUG", "ERROR", "INFO", "INFO"),
        "user": ("ada", "grace", "linus", "linus"),
        "data_link": ("hardlink", "copy", "reflink,copy", "reflink,copy"),
        "max_request_bytes": ("1000", "2000", "3000", "3000"),
        "max_upload_bytes": ("4000", "5000", "6000", "6000"),
        "query_timeout": ("1.5", "2.5", "3.5", "3.5"),
        "query_memory": ("7000", "8000", "9000", "9000"),
        "default_artifact_root": (
            str(root / "arg-root"),
            str(root / "env-root"),
            "file-root",  # relative: anchored at the file's folder
            str(root / "file-root"),
        ),
        "artifact_roots": (
            f"{root / 'a1'},{root / 'a2'}",
            str(root / "e1"),
            "f1,f2",
            f"{root / 'f1'},{root / 'f2'}",
        ),
        "default_approval_policy": ("none", "protect", "none", "none"),
        "prediction_log": (
            "s3://bucket/arg-log",
            str(root / "env-log"),
            "file-log",  # relative: anchored at the file's folder
            str(root / "file-log"),
        ),
        "online_store": (
            "redis://127.0.0.1:6379/1",
            f"sqlite:///{root / 'env-online.db'}",
            "sqlite:///online.db",  # relative: anchored at the file's folder
            f"sqlite:///{root / 'online.db'}",
        ),
        "scorer_modules": ("a.scorers", "b", "c,d.e", "c,d.e"),
    }


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("highest", ["argument", "environment", "file", "default"])
def test_precedence_is_argument_then_environment_then_file_then_default(
    project: Path, key: str, highest: str
) -> None:
    argument, env_value, file_written, file_resolved = _levels(project)[key]
    toml = None
    if highest in ("argument", "environment", "file"):
        toml = _write_toml(project, f'{key} = "{file_written}"\n')
    environ = {ENV[key]: env_value} if highest in ("argument", "environment") else {}
    kwargs = {key: argument} if highest == "argument" else {}

    settings = resolve_settings(cwd=project / "src" / "pkg" / "deep", environ=environ, **kwargs)

    value = getattr(settings, key)
    shown = (
        (",".join(value) if isinstance(value, tuple) else str(value)) if value is not None else None
    )
    source = _sources(settings)[key]
    if highest == "argument":
        assert shown == argument
        assert source == "argument"
    elif highest == "environment":
        assert shown == env_value
        assert source == f"environment {ENV[key]}"
    elif highest == "file":
        assert shown == file_resolved
        assert source == f"file {toml}"
    else:
        defaults = {
            "home": str(project / "src" / "pkg" / "deep" / HOME_DIR),
            "db_uri": f"sqlite:///{project / 'src' / 'pkg' / 'deep' / HOME_DIR / 'loopwright.db'}",
            "blob_uri": str(project / "src" / "pkg" / "deep" / HOME_DIR / "blobs"),
            "server_uri": None,
            "token": None,
            "log_level": "WARNING",
            "user": None,
            "data_link": "reflink,copy",
            "max_request_bytes": str(32 << 20),
            "max_upload_bytes": str(5 << 30),
            "query_timeout": "300.0",
            "query_memory": str(1 << 30),
            "default_artifact_root": None,
            "artifact_roots": "",
            "default_approval_policy": "protect",
            "prediction_log": None,
            "online_store": None,
            "scorer_modules": "",
        }
        assert shown == defaults[key]
        assert source.startswith("default")


def test_every_key_from_every_level_at_once(project: Path) -> None:
    levels = _levels(project)
    toml = _write_toml(project, "".join(f'{k} = "{v[2]}"\n' for k, v in levels.items()))
    environ = {ENV[k]: v[1] for k, v in levels.items() if k in ("db_uri", "token")}
    arguments = {k: v[0] for k, v in levels.items() if k == "token"}

    settings = resolve_settings(cwd=project / "src", environ=environ, **arguments)

    assert settings.token == levels["token"][0]
    assert settings.db_uri == levels["db_uri"][1]
    assert settings.home == project / "file-home"
    assert settings.blob_uri == str(project / "file-blobs")
    assert settings.server_uri == "http://file:3"
    assert settings.log_level == "INFO"
    assert settings.config_file == toml
    assert _sources(settings) == {
        "home": f"file {toml}",
        "db_uri": "environment LOOPWRIGHT_DB_URI",
        "blob_uri": f"file {toml}",
        "server_uri": f"file {toml}",
        "token": "argument",
        "log_level": f"file {toml}",
        "user": f"file {toml}",
        "data_link": f"file {toml}",
        **dict.fromkeys(LIMITS, f"file {toml}"),
        "default_artifact_root": f"file {toml}",
        "artifact_roots": f"file {toml}",
        "default_approval_policy": f"file {toml}",
        "prediction_log": f"file {toml}",
        "online_store": f"file {toml}",
        "scorer_modules": f"file {toml}",
    }


def test_an_empty_environment_variable_counts_as_unset(project: Path) -> None:
    settings = resolve_settings(
        cwd=project, environ={"LOOPWRIGHT_LOG_LEVEL": "", "LOOPWRIGHT_DB_URI": ""}
    )
    assert settings.log_level == "WARNING"
    assert settings.db_uri.startswith("sqlite:///")
    assert _sources(settings)["log_level"] == "default"


def test_environment_defaults_to_os_environ(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOPWRIGHT_TOKEN", "from-os-environ")
    monkeypatch.chdir(project / "src")
    _write_toml(project, 'token = "from-file"\n')

    settings = resolve_settings()

    assert settings.token == "from-os-environ"
    assert settings.config_file == project / CONFIG_FILE


def test_the_working_directory_defaults_to_os_getcwd(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    toml = _write_toml(project, 'log_level = "error"\n')
    monkeypatch.chdir(project / "src" / "pkg")
    settings = resolve_settings(environ={})
    assert settings.config_file == toml
    assert settings.home == project / HOME_DIR
    assert settings.log_level == "ERROR"


def test_log_level_is_case_insensitive_and_normalised(project: Path) -> None:
    assert resolve_settings(cwd=project, environ={}, log_level="debug").log_level == "DEBUG"
    settings = resolve_settings(cwd=project, environ={"LOOPWRIGHT_LOG_LEVEL": "Critical"})
    assert settings.log_level == "CRITICAL"


def test_explicit_home_moves_database_and_blobs_with_it(tmp_path: Path) -> None:
    home = tmp_path.resolve() / "elsewhere"
    settings = resolve_settings(home=home, cwd=tmp_path, environ={})
    assert settings.home == home
    assert settings.db_uri == f"sqlite:///{home / 'loopwright.db'}"
    assert settings.blob_uri == str(home / "blobs")
    assert _sources(settings)["home"] == "argument"


def test_home_with_a_tilde_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path.resolve()))
    settings = resolve_settings(cwd=tmp_path, environ={"LOOPWRIGHT_HOME": "~/lw"})
    assert settings.home == tmp_path.resolve() / "lw"


def test_server_uri_makes_the_settings_non_embedded(tmp_path: Path) -> None:
    settings = resolve_settings(cwd=tmp_path, environ={}, server_uri="https://lw.example.com")
    assert not settings.is_embedded
    assert settings.server_uri == "https://lw.example.com"


# --- loopwright.toml discovery -----------------------------------------------------------------


@pytest.mark.parametrize("table", [False, True], ids=["top-level", "loopwright-table"])
def test_toml_is_found_walking_up_from_a_nested_directory(project: Path, table: bool) -> None:
    body = 'db_uri = "postgresql://lw@db.example/lw"\ntoken = "abcdefghijkl"\nlog_level = "info"\n'
    toml = _write_toml(project, ("[loopwright]\n" if table else "") + body)

    settings = resolve_settings(cwd=project / "src" / "pkg" / "deep", environ={})

    assert settings.config_file == toml
    assert settings.db_uri == "postgresql://lw@db.example/lw"
    assert settings.token == "abcdefghijkl"
    assert settings.log_level == "INFO"
    # The home defaults to the project root, beside loopwright.toml, not to the working dir.
    assert settings.home == project / HOME_DIR
    assert _sources(settings)["db_uri"] == f"file {toml}"
    assert _sources(settings)["home"] == "default"


def test_other_tables_in_the_toml_are_ignored_when_a_loopwright_table_exists(
    project: Path,
) -> None:
    _write_toml(project, '[loopwright]\ntoken = "tok-123456789"\n')
    assert resolve_settings(cwd=project, environ={}).token == "tok-123456789"


def test_top_level_keys_beside_a_loopwright_table_are_not_silently_dropped(
    project: Path,
) -> None:
    """A setting written in the file must either apply or fail loudly, never vanish."""
    _write_toml(project, 'home = "store"\n[loopwright]\nlog_level = "DEBUG"\n')
    try:
        settings = resolve_settings(cwd=project, environ={})
    except ConfigError as exc:
        assert "home" in str(exc)
    else:
        assert settings.home == project / "store"


@pytest.mark.parametrize("table", [False, True], ids=["top-level", "loopwright-table"])
def test_relative_paths_in_the_toml_are_relative_to_its_folder(project: Path, table: bool) -> None:
    toml = _write_toml(
        project, ("[loopwright]\n" if table else "") + 'home = "store"\nblob_uri = "shared/blobs"\n'
    )
    cwd = project / "src" / "pkg" / "deep"

    settings = resolve_settings(cwd=cwd, environ={})

    assert settings.home == project / "store"
    assert settings.blob_uri == str(project / "shared" / "blobs")
    assert settings.db_uri == f"sqlite:///{project / 'store' / 'loopwright.db'}"
    assert _sources(settings)["home"] == f"file {toml}"
    assert _sources(settings)["blob_uri"] == f"file {toml}"
    assert _sources(settings)["db_uri"] == "default (inside home)"


def test_absolute_paths_and_urls_in_the_toml_are_kept(project: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path.resolve() / "abs-home"
    _write_toml(project, f'home = "{elsewhere}"\nblob_uri = "s3://bucket/prefix"\n')
    settings = resolve_settings(cwd=project / "src", environ={})
    assert settings.home == elsewhere
    assert settings.blob_uri == "s3://bucket/prefix"


def test_environment_paths_are_not_rebased_on_the_toml_folder(project: Path) -> None:
    _write_toml(project, 'home = "store"\n')
    env_home = project / "src" / "env-home"
    settings = resolve_settings(cwd=project / "src", environ={"LOOPWRIGHT_HOME": str(env_home)})
    assert settings.home == env_home


def test_an_existing_home_folder_in_a_parent_is_found_like_git(project: Path) -> None:
    (project / HOME_DIR).mkdir()

    settings = resolve_settings(cwd=project / "src" / "pkg" / "deep", environ={})

    assert settings.home == project / HOME_DIR
    assert settings.config_file is None
    assert settings.db_uri == f"sqlite:///{project / HOME_DIR / 'loopwright.db'}"


def test_a_home_file_is_not_mistaken_for_a_home_folder(project: Path) -> None:
    (project / HOME_DIR).write_text("not a folder", encoding="utf-8")
    cwd = project / "src"
    assert resolve_settings(cwd=cwd, environ={}).home == cwd / HOME_DIR


def test_the_nearest_project_marker_wins(project: Path) -> None:
    _write_toml(project, 'token = "outer-token-0000"\n')
    inner = _write_toml(project / "src", 'token = "inner-token-0000"\n')

    settings = resolve_settings(cwd=project / "src" / "pkg" / "deep", environ={})

    assert settings.config_file == inner
    assert settings.token == "inner-token-0000"
    assert settings.home == project / "src" / HOME_DIR


def test_a_nearer_home_folder_shadows_a_farther_toml(project: Path) -> None:
    _write_toml(project, 'token = "outer-token-0000"\n')
    (project / "src" / HOME_DIR).mkdir()

    settings = resolve_settings(cwd=project / "src" / "pkg", environ={})

    assert settings.config_file is None
    assert settings.token is None
    assert settings.home == project / "src" / HOME_DIR


def test_toml_and_home_folder_side_by_side_reads_the_toml(project: Path) -> None:
    (project / HOME_DIR).mkdir()
    toml = _write_toml(project, 'log_level = "ERROR"\n')
    settings = resolve_settings(cwd=project / "src", environ={})
    assert settings.config_file == toml
    assert settings.log_level == "ERROR"
    assert settings.home == project / HOME_DIR


# --- failures name the key and the source ------------------------------------------------------


def _error(exc_info: pytest.ExceptionInfo[ConfigError]) -> str:
    assert exc_info.value.code == "INVALID_CONFIG"
    assert isinstance(exc_info.value, ValueError)
    return str(exc_info.value)


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("db_uri", "mysql://user@host/db", "'mysql'"),
        ("db_uri", "oracle+cx_oracle://user@host/db", "'oracle'"),
        ("db_uri", "loopwright.db", "not a database URL"),
        ("server_uri", "ftp://files.example.com", "http"),
        ("server_uri", "lw.example.com", "http"),
        ("log_level", "LOUD", "LOUD"),
        ("default_approval_policy", "off", "protect, none"),
        ("home", "", "empty"),
        ("token", "tok\x00en", "NUL"),
        ("online_store", "memcached://host:1", "redis://host:port/db"),
        ("online_store", "online.db", "sqlite:///path"),
    ],
)
def test_bad_argument_values_name_the_key_and_the_source(
    tmp_path: Path, key: str, value: str, fragment: str
) -> None:
    with pytest.raises(ConfigError) as exc_info:
        resolve_settings(cwd=tmp_path, environ={}, **{key: value})
    message = _error(exc_info)
    assert f"{key} (argument)" in message
    assert fragment in message


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("db_uri", "mysql://user@host/db", "'mysql'"),
        ("db_uri", "just-a-file.db", "not a database URL"),
        ("server_uri", "grpc://host:1", "http"),
        ("log_level", "verbose", "verbose"),
        ("default_approval_policy", "strict", "'strict' is not one of protect, none"),
    ],
)
def test_bad_environment_values_name_the_key_and_the_variable(
    tmp_path: Path, key: str, value: str, fragment: str
) -> None:
    with pytest.raises(ConfigError) as exc_info:
        resolve_settings(cwd=tmp_path, environ={ENV[key]: value})
    message = _error(exc_info)
    assert key in message
    assert ENV[key] in message
    assert fragment in message


@pytest.mark.parametrize("table", [False, True], ids=["top-level", "loopwright-table"])
@pytest.mark.parametrize(
    ("line", "fragments"),
    [
        ('db_uri = "mysql://user@host/db"', ["db_uri", "'mysql'"]),
        ('db_uri = "no-scheme.db"', ["db_uri", "not a database URL"]),
        ('server_uri = "ws://host"', ["server_uri", "http"]),
        ('log_level = "chatty"', ["log_level", "chatty"]),
        ('colour = "blue"', ["'colour'", "known settings"]),
        ("home = 5", ["home", "int", "5"]),
        ("log_level = 10", ["log_level", "int"]),
        ("token = true", ["token", "bool"]),
        ('blob_uri = ["a", "b"]', ["blob_uri", "list"]),
    ],
)
def test_bad_toml_values_name_the_key_and_the_file(
    project: Path, table: bool, line: str, fragments: list[str]
) -> None:
    toml = _write_toml(project, ("[loopwright]\n" if table else "") + line + "\n")
    with pytest.raises(ConfigError) as exc_info:
        resolve_settings(cwd=project / "src", environ={})
    message = _error(exc_info)
    assert str(toml) in message
    for fragment in fragments:
        assert fragment in message


def test_a_bad_toml_value_fails_even_when_an_argument_overrides_it(project: Path) -> None:
    toml = _write_toml(project, 'colour = "blue"\n')
    with pytest.raises(ConfigError, match="colour") as exc_info:
        resolve_settings(cwd=project, environ={}, db_uri="sqlite:///x.db")
    assert str(toml) in _error(exc_info)


@pytest.mark.parametrize(
    "text",
    ["home = \n", 'home = "unterminated\n', "[loopwright\n", 'home = "a"\nhome = "b"\n'],
)
def test_invalid_toml_names_the_file(project: Path, text: str) -> None:
    toml = _write_toml(project, text)
    with pytest.raises(ConfigError) as exc_info:
        resolve_settings(cwd=project / "src" / "pkg", environ={})
    message = _error(exc_info)
    assert str(toml) in message
    assert "TOML" in message


def test_a_loopwright_key_that_is_not_a_table_fails(project: Path) -> None:
    toml = _write_toml(project, 'loopwright = "yes"\n')
    with pytest.raises(ConfigError) as exc_info:
        resolve_settings(cwd=project, environ={})
    message = _error(exc_info)
    assert str(toml) in message
    assert "[loopwright]" in message


def test_an_empty_home_in_the_toml_is_refused(project: Path) -> None:
    """``home = ""`` must not turn the project folder itself into the Loopwright home (whose
    ``.gitignore`` of ``*`` would then hide the whole project from Git)."""
    toml = _write_toml(project, 'home = ""\n')
    with pytest.raises(ConfigError) as exc_info:
        resolve_settings(cwd=project, environ={})
    message = _error(exc_info)
    assert "home" in message
    assert str(toml) in message


# --- display -----------------------------------------------------------------------------------


def test_describe_masks_a_long_token(tmp_path: Path) -> None:
    token = "lw_supersecret_0123456789"
    settings = resolve_settings(cwd=tmp_path, environ={"LOOPWRIGHT_TOKEN": token})
    assert settings.token == token  # the real value is still there for the client to send

    rows = {key: (value, source) for key, value, source in settings.describe()}
    shown, source = rows["token"]
    assert shown == "lw_s…"
    assert source == "environment LOOPWRIGHT_TOKEN"
    assert all(token not in value and "supersecret" not in value for value, _ in rows.values())


@pytest.mark.parametrize("token", ["abc", "12345678"])
def test_describe_masks_a_short_token_completely(tmp_path: Path, token: str) -> None:
    settings = resolve_settings(cwd=tmp_path, environ={}, token=token)
    assert _values(settings)["token"] == "***"


def test_describe_lists_every_key_in_order(tmp_path: Path) -> None:
    settings = resolve_settings(cwd=tmp_path, environ={}, log_level="info")
    rows = settings.describe()
    assert [key for key, _, _ in rows] == list(KEYS)
    assert _values(settings)["server_uri"] == ""
    assert _values(settings)["token"] == ""
    assert _values(settings)["log_level"] == "INFO"
    assert _values(settings)["home"] == str(tmp_path.resolve() / HOME_DIR)


# --- artifact roots ----------------------------------------------------------------------------


def test_artifact_roots_take_paths_and_file_uris(tmp_path: Path) -> None:
    settings = resolve_settings(
        cwd=tmp_path,
        environ={
            "LOOPWRIGHT_DEFAULT_ARTIFACT_ROOT": "file:///srv/mlruns",
            "LOOPWRIGHT_ARTIFACT_ROOTS": f"file://localhost/srv/shared, {tmp_path / 'x'},rel",
        },
    )
    assert settings.default_artifact_root == "/srv/mlruns"
    assert settings.artifact_roots == ("/srv/shared", str(tmp_path / "x"), str(tmp_path / "rel"))


def test_the_served_default_artifact_root_is_none(tmp_path: Path) -> None:
    for value in ("mlflow-artifacts:/", "mlflow-artifacts:"):
        assert (
            resolve_settings(cwd=tmp_path, default_artifact_root=value).default_artifact_root
            is None
        )
    assert resolve_settings(cwd=tmp_path, environ={}).default_artifact_root is None


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("default_artifact_root", "s3://bucket/prefix"),
        ("default_artifact_root", "file://otherhost/srv"),
        ("default_artifact_root", "mlflow-artifacts:/elsewhere"),
        ("artifact_roots", "/srv/ok,gs://bucket"),
        ("artifact_roots", "mlflow-artifacts:/"),
    ],
)
def test_an_artifact_root_that_is_not_a_local_folder_is_refused(
    tmp_path: Path, key: str, value: str
) -> None:
    with pytest.raises(ConfigError, match=key):
        if key == "default_artifact_root":
            resolve_settings(cwd=tmp_path, default_artifact_root=value)
        else:
            resolve_settings(cwd=tmp_path, artifact_roots=value)


def test_the_default_approval_policy_is_protect_or_none_in_any_case(tmp_path: Path) -> None:
    assert resolve_settings(cwd=tmp_path, environ={}).default_approval_policy == "protect"
    environ = {"LOOPWRIGHT_DEFAULT_APPROVAL_POLICY": " None "}
    assert resolve_settings(cwd=tmp_path, environ=environ).default_approval_policy == "none"
