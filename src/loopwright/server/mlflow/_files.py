"""Artifact trees by owner for the MLflow routes: see :mod:`loopwright.store.artifact_trees`."""

from __future__ import annotations

from ...store.artifact_trees import LOGGED_MODEL as LOGGED_MODEL
from ...store.artifact_trees import MLFLOW_VERSION as MLFLOW_VERSION
from ...store.artifact_trees import PACKAGE as PACKAGE
from ...store.artifact_trees import RUN as RUN
from ...store.artifact_trees import Entry as Entry
from ...store.artifact_trees import FileRow as FileRow
from ...store.artifact_trees import children as children
from ...store.artifact_trees import copy_tree as copy_tree
from ...store.artifact_trees import delete_tree as delete_tree
from ...store.artifact_trees import file_at as file_at
from ...store.artifact_trees import files_under as files_under
from ...store.artifact_trees import put_file as put_file

__all__ = [
    "LOGGED_MODEL",
    "MLFLOW_VERSION",
    "PACKAGE",
    "RUN",
    "Entry",
    "FileRow",
    "children",
    "copy_tree",
    "delete_tree",
    "file_at",
    "files_under",
    "put_file",
]
