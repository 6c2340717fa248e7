"""Converting an MLflow model directory (``MLmodel`` + files) into a Loopwright package.

Supported MLflow flavors, tried in this order:

- ``sklearn``: a skops file is kept as is. A pickle or cloudpickle file is kept as a
  ``uses_pickle`` sklearn package (loadable only with ``trusted=True``), unless the conversion is
  itself trusted, in which case the model is unpickled once and re-saved as skops, so the result
  is safe to load anywhere.
- ``xgboost``: the native model file (UBJSON, JSON or legacy binary) is kept.
- ``python_function`` alone: a cloudpickled ``python_model`` or a ``loader_module`` with its
  data, plus the ``code`` folder, as an ``mlflow_pyfunc`` package (``uses_pickle`` and
  ``executes_code``).

The MLflow signature and input example carry over. Every path the ``MLmodel`` file names goes
through the path resolver, so a crafted file cannot make the conversion read outside ``src``.

Example:
    >>> convert_mlflow_model(Path("no-such-mlflow-model"), Path("out"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    loopwright.errors.NotFound: 'no-such-mlflow-model' is not an MLflow model folder: ...
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ...errors import InvalidInput, NotFound
from ...paths import safe_join
from ._examples import EXAMPLE_FILE
from ._package_manifest import PackageManifest
from ._safe_pickle import load_pickle
from ._writer import PackageContent, write_package
from .signature import Signature

__all__ = ["convert_mlflow_model"]

MAX_MLMODEL_BYTES = 1 << 20
_PATH_FIELDS = ("model_path", "data", "code", "pickled_model", "python_model", "artifacts")
_XGB_CLASSES = {
    f"xgboost.{module}.{name}": name
    for module, names in {
        "core": ("Booster",),
        "sklearn": (
            "XGBClassifier",
            "XGBRegressor",
            "XGBRanker",
            "XGBRFClassifier",
            "XGBRFRegressor",
        ),
    }.items()
    for name in names
}
_XGB_FORMATS = {"ubj": "model.ubj", "json": "model.json", "xgb": "model.xgb"}


def convert_mlflow_model(src: Path, dst: Path, *, trusted: bool = False) -> PackageManifest:
    """Write the MLflow model in folder ``src`` as a Loopwright package in the new folder ``dst``.

    Args:
        src: an MLflow model folder (holding ``MLmodel``).
        dst: the package folder to create (must not exist, or be empty).
        trusted: the MLflow model comes from a trusted source. Pickled scikit-learn models are
            then unpickled once and re-saved as skops. Nothing is unpickled otherwise.

    Raises:
        NotFound: ``src`` has no ``MLmodel`` file.
        UnsafePath: a path in ``MLmodel`` leaves ``src``.
        InvalidInput: the ``MLmodel`` file is malformed or its flavors are not supported.
    """
    src = Path(src)
    model = _read_mlmodel(src)
    flavors = model["flavors"]
    for flavor_name, conf in flavors.items():
        for key in _PATH_FIELDS:
            if isinstance(conf, Mapping) and isinstance(conf.get(key), str):
                safe_join(src, conf[key], what=f"MLmodel field flavors.{flavor_name}.{key}")
    raw_signature = model.get("signature")
    signature = None if raw_signature is None else Signature.from_mlflow(raw_signature)
    example = _example_file(src, model.get("saved_input_example_info"))
    pyfunc_conf = flavors.get("python_function")
    python = pyfunc_conf.get("python_version") if isinstance(pyfunc_conf, Mapping) else None

    if "sklearn" in flavors:
        conf = _conf(flavors, "sklearn")
        pickled = conf.get("serialization_format", "cloudpickle") in ("pickle", "cloudpickle")
        if pickled and trusted and conf.get("code") is None:
            return _resave_as_skops(src, dst, conf, signature, example)
        content, files = _sklearn(src, conf)
    elif "xgboost" in flavors:
        content, files = _xgboost(src, _conf(flavors, "xgboost"))
    elif "python_function" in flavors:
        content, files = _pyfunc(src, _conf(flavors, "python_function"))
    else:
        raise InvalidInput(
            f"MLflow model {str(src)!r} has flavors {sorted(flavors)}; Loopwright converts "
            "sklearn, xgboost and python_function models"
        )
    content["signature"] = signature
    content["libraries"]["mlflow"] = str(model.get("mlflow_version", ""))

    def build(folder: Path) -> PackageContent:
        for name, source in files.items():
            if source.is_dir():
                # Links are copied as links, so that write_package refuses them rather than
                # copying in whatever they point to (possibly outside ``src``).
                shutil.copytree(source, folder / name, symlinks=True)
            else:
                (folder / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, folder / name)
        if example is not None:
            shutil.copyfile(example, folder / EXAMPLE_FILE)
            content["input_example"] = EXAMPLE_FILE
        return content

    return write_package(dst, build, python=python if isinstance(python, str) else None)


def _resave_as_skops(
    src: Path,
    dst: Path,
    conf: Mapping[str, Any],
    signature: Signature | None,
    example: Path | None,
) -> PackageManifest:
    from ._examples import load_example
    from .package import save_model

    file = safe_join(src, _text(conf, "pickled_model"), what="MLmodel sklearn.pickled_model")
    estimator = load_pickle(file, trusted=True)
    example_value = None if example is None else load_example(example.read_bytes())
    return save_model(
        estimator,
        dst,
        flavor="sklearn",
        signature="infer" if signature is None else signature,
        input_example=example_value,
    )


def _sklearn(src: Path, conf: Mapping[str, Any]) -> tuple[PackageContent, dict[str, Path]]:
    file = safe_join(src, _text(conf, "pickled_model"), what="MLmodel sklearn.pickled_model")
    serialization = conf.get("serialization_format", "cloudpickle")
    if serialization not in ("skops", "pickle", "cloudpickle"):
        raise InvalidInput(f"MLflow sklearn serialization {serialization!r} is not supported")
    target = "model.skops" if serialization == "skops" else "model.pkl"
    files = {target: file}
    options: dict[str, Any] = {"serialization": serialization, "file": target}
    if conf.get("code") is not None:
        # Custom code the model refers to: importable while loading, so loading runs it.
        files["code"] = safe_join(src, _text(conf, "code"), what="MLmodel sklearn.code")
        options["code"] = "code"
    libraries = {"scikit-learn": str(conf.get("sklearn_version", ""))}
    uses_pickle = serialization != "skops"
    return _content("sklearn", options, uses_pickle, "code" in options, libraries), files


def _xgboost(src: Path, conf: Mapping[str, Any]) -> tuple[PackageContent, dict[str, Path]]:
    model_class = _XGB_CLASSES.get(str(conf.get("model_class", "xgboost.core.Booster")))
    model_format = str(conf.get("model_format", "xgb"))
    if model_class is None or model_format not in _XGB_FORMATS:
        raise InvalidInput(
            f"MLflow xgboost model_class {conf.get('model_class')!r} / model_format "
            f"{model_format!r} is not supported; classes: {', '.join(_XGB_CLASSES)}"
        )
    target = _XGB_FORMATS[model_format]
    files = {target: safe_join(src, _text(conf, "data"), what="MLmodel xgboost.data")}
    libraries = {"xgboost": str(conf.get("xgb_version", ""))}
    options = {"model_class": model_class, "file": target}
    return _content("xgboost", options, False, False, libraries), files


def _read_mlmodel(src: Path) -> dict[str, Any]:
    path = src / "MLmodel"
    if not path.is_file():
        raise NotFound(
            f"{str(src)!r} is not an MLflow model folder: it has no MLmodel file; give the "
            "folder mlflow.<flavor>.save_model wrote (or the model's artifact folder of a run)"
        )
    if path.stat().st_size > MAX_MLMODEL_BYTES:
        raise InvalidInput(f"MLmodel in {str(src)!r} is larger than {MAX_MLMODEL_BYTES} bytes")
    import yaml

    try:
        model = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"MLmodel in {str(src)!r} is not valid YAML ({exc})") from None
    if not isinstance(model, dict) or not isinstance(model.get("flavors"), dict):
        raise InvalidInput(f"MLmodel in {str(src)!r} has no 'flavors' mapping")
    return model


def _conf(flavors: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    conf = flavors[name]
    if not isinstance(conf, Mapping):
        raise InvalidInput(f"MLmodel flavors.{name} must be a mapping")
    return conf


def _text(conf: Mapping[str, Any], key: str) -> str:
    value = conf.get(key)
    if not isinstance(value, str):
        raise InvalidInput(f"MLmodel field {key!r} must be a string path, not {value!r}")
    return value


def _content(
    flavor: str, options: dict[str, Any], pickle: bool, code: bool, libraries: dict[str, str]
) -> PackageContent:
    return PackageContent(
        flavor=flavor,
        flavor_options=options,
        signature=None,
        input_example=None,
        libraries=libraries,
        uses_pickle=pickle,
        executes_code=code,
    )


def _pyfunc(src: Path, conf: Mapping[str, Any]) -> tuple[PackageContent, dict[str, Path]]:
    files: dict[str, Path] = {}
    options: dict[str, Any] = {"code": None}
    if conf.get("artifacts"):
        raise InvalidInput(
            "MLflow python models with artifacts are not supported yet; log the artifacts "
            "inside the model instead"
        )
    if conf.get("code") is not None:
        files["code"] = safe_join(src, _text(conf, "code"), what="MLmodel python_function.code")
        options["code"] = "code"
    loader = conf.get("loader_module")
    if isinstance(conf.get("python_model"), str) and loader in (None, "mlflow.pyfunc.model"):
        path = safe_join(src, _text(conf, "python_model"), what="MLmodel python_model")
        if path.suffix != ".pkl":
            raise InvalidInput("MLflow models from code (a .py python_model) are not supported yet")
        files["python_model.pkl"] = path
        options.update(kind="python_model", file="python_model.pkl")
    elif isinstance(loader, str):
        options.update(kind="loader_module", loader_module=loader, data=None)
        if conf.get("data") is not None:
            data = safe_join(src, _text(conf, "data"), what="MLmodel python_function.data")
            files[f"data/{data.name}"] = data
            options["data"] = f"data/{data.name}"
    else:
        raise InvalidInput("MLflow python_function needs a python_model file or a loader_module")
    libraries = {"cloudpickle": str(conf.get("cloudpickle_version", ""))}
    return _content("mlflow_pyfunc", options, True, True, libraries), files


def _example_file(src: Path, info: Any) -> Path | None:
    """The MLflow input example file, if it is one Loopwright reads (split DataFrame or array)."""
    if not isinstance(info, Mapping) or not isinstance(info.get("artifact_path"), str):
        return None
    path = safe_join(src, info["artifact_path"], what="MLmodel saved_input_example_info")
    kind = info.get("type")
    if not path.is_file() or kind not in ("dataframe", "ndarray"):
        return None
    if kind == "dataframe" and info.get("pandas_orient", "split") != "split":
        return None
    try:
        document = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    split = isinstance(document, dict) and set(document) == {"columns", "data"}
    return path if split or kind == "ndarray" else None
