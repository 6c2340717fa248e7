"""The one SQL schema every component shares (SQLAlchemy Core tables).

Conventions: ids are 32-hex time-sortable strings (``loopwright._ids.new_id``); times are UTC
milliseconds in BIGINT columns named ``*_at`` or ``timestamp``; JSON documents are TEXT columns
named ``*_json``. A column that holds a blob hash carries ``info={"blob_ref": True}`` so that
garbage collection finds every reference without a hand-kept list.

The schema changes only through Alembic migrations in ``store/migrations/versions``; a test checks
that the migrations produce exactly these tables.
"""

from __future__ import annotations

import sqlalchemy as sa

from . import limits

__all__ = ["blob_ref_columns", "metadata"]

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _id(name: str = "id", **kwargs: object) -> sa.Column[str]:
    return sa.Column(name, sa.String(32), **kwargs)  # type: ignore[arg-type]


def _fk(
    name: str, target: str, *, nullable: bool = False, ondelete: str = "CASCADE"
) -> sa.Column[str]:
    return sa.Column(
        name, sa.String(32), sa.ForeignKey(target, ondelete=ondelete), nullable=nullable
    )


def _ms(name: str, *, nullable: bool = False) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger, nullable=nullable)


def _blob(name: str, *, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.String(64), nullable=nullable, info={"blob_ref": True})


def _tags(name: str, owner: str, owner_column: str) -> sa.Table:
    """A key/value tag table owned by ``owner`` (one value per key)."""
    return sa.Table(
        name,
        metadata,
        _fk(owner_column, f"{owner}.id"),
        sa.Column("key", sa.String(limits.KEY), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint(owner_column, "key"),
    )


def _aliases(name: str, owner: str, owner_column: str, versions: str) -> sa.Table:
    """Named pointers (``champion``, ``latest`` …) from an owner to one of its versions."""
    return sa.Table(
        name,
        metadata,
        _fk(owner_column, f"{owner}.id"),
        sa.Column("alias", sa.String(limits.ALIAS), nullable=False),
        _fk("version_id", f"{versions}.id"),
        _ms("updated_at"),
        sa.PrimaryKeyConstraint(owner_column, "alias"),
    )


# --- identity -------------------------------------------------------------------------------

users = sa.Table(
    "users",
    metadata,
    _id(primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("email", sa.String(320)),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
    _ms("created_at"),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    _id(primary_key=True),
    _fk("user_id", "users.id"),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    _ms("created_at"),
    _ms("expires_at", nullable=True),
    _ms("revoked_at", nullable=True),
    _ms("last_used_at", nullable=True),
)

# --- blobs and artifact trees ----------------------------------------------------------------

blobs = sa.Table(
    "blobs",
    metadata,
    sa.Column("hash", sa.String(64), primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    _ms("created_at"),
)

# One row per file of a run's artifacts, a dataset version or a model version's package.
artifacts = sa.Table(
    "artifacts",
    metadata,
    sa.Column("owner_type", sa.String(20), nullable=False),
    _id("owner_id", nullable=False),
    sa.Column("path", sa.String(4096), nullable=False),
    _blob("blob_hash"),
    sa.Column("size", sa.BigInteger, nullable=False),
    _ms("created_at"),
    sa.PrimaryKeyConstraint("owner_type", "owner_id", "path"),
)

# --- tracking ---------------------------------------------------------------------------------

experiments = sa.Table(
    "experiments",
    metadata,
    _id(primary_key=True),
    sa.Column("name", sa.String(limits.EXPERIMENT_NAME), nullable=False, unique=True),
    sa.Column("description", sa.Text),
    sa.Column("lifecycle_stage", sa.String(20), nullable=False, server_default="active"),
    _ms("created_at"),
    _ms("updated_at"),
    # A local folder the server allows (tracking/artifact_locations.py); NULL: served by it.
    sa.Column("artifact_location", sa.Text),
)
experiment_tags = _tags("experiment_tags", "experiments", "experiment_id")

# Captured once per distinct Python environment (hash of interpreter + packages).
environments = sa.Table(
    "environments",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("python_version", sa.String(50), nullable=False),
    sa.Column("packages_json", sa.Text, nullable=False),
    _ms("created_at"),
)

runs = sa.Table(
    "runs",
    metadata,
    _id(primary_key=True),
    _fk("experiment_id", "experiments.id"),
    sa.Column("name", sa.String(limits.RUN_NAME), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("lifecycle_stage", sa.String(20), nullable=False, server_default="active"),
    _fk("parent_run_id", "runs.id", nullable=True, ondelete="SET NULL"),
    sa.Column("user", sa.String(200)),
    sa.Column("host", sa.String(255)),
    sa.Column("entry_point", sa.Text),
    sa.Column("git_commit", sa.String(64)),
    sa.Column("git_branch", sa.String(255)),
    sa.Column("git_dirty", sa.Boolean),
    _blob("git_diff_blob", nullable=True),
    sa.Column(
        "environment_id", sa.String(64), sa.ForeignKey("environments.id", ondelete="SET NULL")
    ),
    sa.Column("error", sa.Text),
    _ms("start_time"),
    _ms("end_time", nullable=True),
    _ms("heartbeat_at", nullable=True),
    _ms("deleted_at", nullable=True),
    sa.Index(None, "experiment_id", "start_time"),
)

params = sa.Table(
    "params",
    metadata,
    _fk("run_id", "runs.id"),
    sa.Column("key", sa.String(limits.KEY), nullable=False),
    sa.Column("value", sa.Text, nullable=False),
    sa.PrimaryKeyConstraint("run_id", "key"),
    # Run search (tracking/search.py). PostgreSQL's B-tree refuses entries over ~2.7 kB, so there
    # the index holds only values of at most 1000 bytes; search adds the predicate when it can.
    sa.Index(
        None, "key", "value", "run_id", postgresql_where=sa.text("octet_length(value) <= 1000")
    ),
)

run_tags = _tags("run_tags", "runs", "run_id")
sa.Index(  # the same search index as on params; attaches itself to run_tags
    None,
    run_tags.c.key,
    run_tags.c.value,
    run_tags.c.run_id,
    postgresql_where=sa.text("octet_length(value) <= 1000"),
)

# Full history; the primary key makes an exactly repeated point a no-op. NaN is stored as
# value 0 with is_nan true, since SQLite cannot store NaN.
metrics = sa.Table(
    "metrics",
    metadata,
    _fk("run_id", "runs.id"),
    sa.Column("key", sa.String(limits.KEY), nullable=False),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("timestamp", sa.BigInteger, nullable=False),
    sa.Column("value", sa.Double, nullable=False),
    sa.Column("is_nan", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.PrimaryKeyConstraint("run_id", "key", "step", "timestamp", "value", "is_nan"),
    # The key is the whole row: no separate rowid b-tree, ~40% faster bulk inserts on SQLite.
    sqlite_with_rowid=False,
)

# The last point per key (highest step, then timestamp), kept for fast search and listing.
latest_metrics = sa.Table(
    "latest_metrics",
    metadata,
    _fk("run_id", "runs.id"),
    sa.Column("key", sa.String(limits.KEY), nullable=False),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("timestamp", sa.BigInteger, nullable=False),
    sa.Column("value", sa.Double, nullable=False),
    sa.Column("is_nan", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.PrimaryKeyConstraint("run_id", "key"),
    # Covers run search's metric comparisons (tracking/search.py): no table lookup per match.
    sa.Index(None, "key", "value", "is_nan", "run_id"),
)

# --- data -------------------------------------------------------------------------------------

datasets = sa.Table(
    "datasets",
    metadata,
    _id(primary_key=True),
    sa.Column("name", sa.String(limits.DATASET_NAME), nullable=False, unique=True),
    sa.Column("description", sa.Text),
    _ms("created_at"),
    _ms("updated_at"),
)

dataset_versions = sa.Table(
    "dataset_versions",
    metadata,
    _id(primary_key=True),
    _fk("dataset_id", "datasets.id"),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("message", sa.Text),
    _fk("parent_id", "dataset_versions.id", nullable=True, ondelete="SET NULL"),
    _fk("produced_by_run_id", "runs.id", nullable=True, ondelete="SET NULL"),
    sa.Column("file_count", sa.BigInteger, nullable=False),
    sa.Column("total_size", sa.BigInteger, nullable=False),
    sa.Column("source", sa.Text),
    sa.Column("schema_json", sa.Text),
    sa.Column("profile_json", sa.Text),
    sa.Column("created_by", sa.String(200)),
    _ms("created_at"),
    sa.UniqueConstraint("dataset_id", "number"),
    sa.UniqueConstraint("dataset_id", "content_hash"),
)
dataset_version_tags = _tags("dataset_version_tags", "dataset_versions", "version_id")

dataset_aliases = _aliases("dataset_aliases", "datasets", "dataset_id", "dataset_versions")

# Expectation suites are versioned like datasets: a changed definition is a new version.
validation_suites = sa.Table(
    "validation_suites",
    metadata,
    _id(primary_key=True),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("definition_json", sa.Text, nullable=False),
    _ms("created_at"),
    sa.UniqueConstraint("name", "version"),
    sa.UniqueConstraint("name", "content_hash"),
)

validation_results = sa.Table(
    "validation_results",
    metadata,
    _id(primary_key=True),
    _fk("dataset_version_id", "dataset_versions.id"),
    _fk("suite_id", "validation_suites.id"),
    sa.Column("success", sa.Boolean, nullable=False),
    sa.Column("result_json", sa.Text, nullable=False),
    _ms("created_at"),
    sa.Index(None, "dataset_version_id", "created_at"),
)

# Lineage: which dataset versions a run read.
run_inputs = sa.Table(
    "run_inputs",
    metadata,
    _fk("run_id", "runs.id"),
    _fk("dataset_version_id", "dataset_versions.id"),
    sa.Column("context", sa.String(100), nullable=False, server_default="training"),
    _ms("created_at"),
    sa.PrimaryKeyConstraint("run_id", "dataset_version_id", "context"),
    sa.Index(None, "dataset_version_id"),
)

# --- registry ---------------------------------------------------------------------------------

registered_models = sa.Table(
    "registered_models",
    metadata,
    _id(primary_key=True),
    sa.Column("name", sa.String(limits.MODEL_NAME), nullable=False, unique=True),
    sa.Column("description", sa.Text),
    # Who must approve what (ApprovalPolicy as JSON) and the model card's user-supplied text.
    sa.Column("approval_policy_json", sa.Text),
    sa.Column("card_json", sa.Text),
    sa.Column("created_by", sa.String(200)),
    _ms("created_at"),
    _ms("updated_at"),
)
registered_model_tags = _tags("registered_model_tags", "registered_models", "model_id")

model_versions = sa.Table(
    "model_versions",
    metadata,
    _id(primary_key=True),
    _fk("model_id", "registered_models.id"),
    sa.Column("version", sa.Integer, nullable=False),
    _fk("run_id", "runs.id", nullable=True, ondelete="SET NULL"),
    sa.Column("source", sa.Text),
    sa.Column("status", sa.String(20), nullable=False, server_default="READY"),
    sa.Column("stage", sa.String(20), nullable=False, server_default="None"),
    sa.Column("flavor", sa.String(50)),
    # BLAKE3 of the package manifest, which lists the hash of every file of the package.
    sa.Column("package_hash", sa.String(64)),
    sa.Column("signature_json", sa.Text),
    sa.Column("metrics_json", sa.Text),
    sa.Column("description", sa.Text),
    sa.Column("created_by", sa.String(200)),
    _ms("created_at"),
    _ms("updated_at"),
    # "package": the files are a verified package stored here. "external": only the source URI
    # is known (MLflow registers any URI); nothing is stored and nothing loads until it is pinned.
    sa.Column("source_kind", sa.String(20), nullable=False, server_default="package"),
    # The run id as a client gave it when no run here has it (MLflow stores it unchecked);
    # ``run_id`` keeps the foreign key for runs that exist.
    sa.Column("run_ref", sa.String(100)),
    sa.UniqueConstraint("model_id", "version"),
)
model_version_tags = _tags("model_version_tags", "model_versions", "version_id")

model_aliases = _aliases("model_aliases", "registered_models", "model_id", "model_versions")

model_version_datasets = sa.Table(
    "model_version_datasets",
    metadata,
    _fk("version_id", "model_versions.id"),
    _fk("dataset_version_id", "dataset_versions.id"),
    sa.PrimaryKeyConstraint("version_id", "dataset_version_id"),
)

approval_requests = sa.Table(
    "approval_requests",
    metadata,
    _id(primary_key=True),
    # What the request would change: a model version ("model", version_id) or a prompt version
    # ("prompt", prompt_version_id; revision 0013). Decisions and rules are the same for both.
    _fk("version_id", "model_versions.id", nullable=True),
    sa.Column("action", sa.String(20), nullable=False),
    sa.Column("target", sa.String(100), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("requested_by", sa.String(200), nullable=False),
    sa.Column("comment", sa.Text),
    # The policy rule in force when the request was opened; later policy edits do not change it.
    sa.Column("rule_json", sa.Text),
    _ms("created_at"),
    _ms("expires_at", nullable=True),
    _ms("resolved_at", nullable=True),
    sa.Column("subject_kind", sa.String(20), nullable=False, server_default="model"),
    _fk("prompt_version_id", "prompt_versions.id", nullable=True),
    sa.Index(None, "status"),
)

approval_decisions = sa.Table(
    "approval_decisions",
    metadata,
    _id(primary_key=True),
    _fk("request_id", "approval_requests.id"),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("role", sa.String(20)),
    sa.Column("decision", sa.String(10), nullable=False),
    sa.Column("comment", sa.Text),
    _ms("created_at"),
    sa.UniqueConstraint("request_id", "actor"),
)

# --- governance -------------------------------------------------------------------------------

# Append-only and hash-chained: each row stores the hash of the previous one.
audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    _id("id", nullable=False, unique=True),
    _ms("timestamp"),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("action", sa.String(100), nullable=False),
    sa.Column("subject_type", sa.String(50), nullable=False),
    sa.Column("subject_id", sa.String(300), nullable=False),
    sa.Column("before_json", sa.Text),
    sa.Column("after_json", sa.Text),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Index(None, "subject_type", "subject_id"),
    sa.Index(None, "actor"),
)

# The chain's newest event, written in the same transaction as each append: deleting the newest
# events leaves the head pointing past the end of the chain (one row, id 1).
audit_head = sa.Table(
    "audit_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)


# --- MLflow compatibility (server/mlflow) ---------------------------------------------------

# MLflow 3's LoggedModel: a model a run produced, with its own files (``artifacts`` rows of owner
# type ``logged_model``), status lifecycle, tags, params and metrics. Exposed as ``m-<id>``.
logged_models = sa.Table(
    "logged_models",
    metadata,
    _id(primary_key=True),
    _fk("experiment_id", "experiments.id"),
    sa.Column("name", sa.String(250), nullable=False),
    _fk("source_run_id", "runs.id", nullable=True, ondelete="SET NULL"),
    sa.Column("model_type", sa.String(100)),
    sa.Column("status", sa.String(20), nullable=False),  # PENDING | READY | FAILED
    sa.Column("status_message", sa.Text),
    sa.Column("lifecycle_stage", sa.String(20), nullable=False, server_default="active"),
    sa.Column("created_by", sa.String(200)),
    _ms("created_at"),
    _ms("updated_at"),
    sa.Index(None, "experiment_id", "created_at"),
    sa.Index(None, "source_run_id"),
)
logged_model_tags = _tags("logged_model_tags", "logged_models", "model_id")

logged_model_params = sa.Table(
    "logged_model_params",
    metadata,
    _fk("model_id", "logged_models.id"),
    sa.Column("key", sa.String(250), nullable=False),
    sa.Column("value", sa.Text, nullable=False),
    sa.PrimaryKeyConstraint("model_id", "key"),
)

# Metric points logged for a model (MLflow's ``model_id`` on a metric); exact repeats ignored.
logged_model_metrics = sa.Table(
    "logged_model_metrics",
    metadata,
    _fk("model_id", "logged_models.id"),
    sa.Column("key", sa.String(250), nullable=False),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("timestamp", sa.BigInteger, nullable=False),
    sa.Column("value", sa.Double, nullable=False),
    sa.Column("is_nan", sa.Boolean, nullable=False, server_default=sa.false()),
    _fk("run_id", "runs.id", nullable=True, ondelete="SET NULL"),
    sa.Column("dataset_name", sa.String(500)),
    sa.Column("dataset_digest", sa.String(36)),
    sa.PrimaryKeyConstraint("model_id", "key", "step", "timestamp", "value", "is_nan"),
)

# Which logged models a run read (direction "input") or produced ("output", at a step).
run_logged_models = sa.Table(
    "run_logged_models",
    metadata,
    _fk("run_id", "runs.id"),
    _fk("model_id", "logged_models.id"),
    sa.Column("direction", sa.String(10), nullable=False),
    sa.Column("step", sa.BigInteger),
    _ms("created_at"),
    sa.PrimaryKeyConstraint("run_id", "model_id", "direction"),
    sa.Index(None, "model_id"),
)

# Datasets a run read that Loopwright does not version (MLflow's dataset inputs): what the client
# said about them. A reference to a Loopwright dataset version goes to ``run_inputs`` as well.
run_external_datasets = sa.Table(
    "run_external_datasets",
    metadata,
    _fk("run_id", "runs.id"),
    sa.Column("name", sa.String(500), nullable=False),
    sa.Column("digest", sa.String(36), nullable=False),
    sa.Column("source_type", sa.String(100)),
    sa.Column("source", sa.Text),
    sa.Column("schema_json", sa.Text),
    sa.Column("profile_json", sa.Text),
    sa.Column("tags_json", sa.Text),
    _ms("created_at"),
    sa.PrimaryKeyConstraint("run_id", "name", "digest"),
)

# A model version registered through MLflow's API keeps the MLflow model folder it was converted
# from (``artifacts`` rows of owner type ``mlflow_version``, sharing the blobs) and its LoggedModel.
mlflow_model_versions = sa.Table(
    "mlflow_model_versions",
    metadata,
    _fk("version_id", "model_versions.id"),
    _fk("logged_model_id", "logged_models.id", nullable=True, ondelete="SET NULL"),
    sa.Column("source_uri", sa.Text),
    _ms("created_at"),
    sa.PrimaryKeyConstraint("version_id"),
    sa.Index(None, "logged_model_id"),
)


# --- serving: deployments (revision 0009) ---------------------------------------------------

# A named endpoint and its current traffic policy: the strategy and the variants as JSON
# (name, model URI, weight, role), the same document each revision row keeps.
deployments = sa.Table(
    "deployments",
    metadata,
    _id(primary_key=True),
    sa.Column("name", sa.String(limits.DEPLOYMENT_NAME), nullable=False, unique=True),
    sa.Column("description", sa.Text),
    sa.Column("strategy", sa.String(20), nullable=False),
    sa.Column("policy_json", sa.Text, nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    _ms("created_at"),
    sa.Column("updated_by", sa.String(200), nullable=False),
    _ms("updated_at"),
)

# Every state a deployment's policy had (gap-free numbers per deployment, taken under the
# deployment row's lock): rollback restores one of them.
deployment_revisions = sa.Table(
    "deployment_revisions",
    metadata,
    _fk("deployment_id", "deployments.id"),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("strategy", sa.String(20), nullable=False),
    sa.Column("policy_json", sa.Text, nullable=False),
    sa.Column("action", sa.String(20), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    _ms("created_at"),
    sa.PrimaryKeyConstraint("deployment_id", "revision"),
)

# Serving processes that reported themselves (heartbeats), one row per deployment and URL.
deployment_instances = sa.Table(
    "deployment_instances",
    metadata,
    _fk("deployment_id", "deployments.id"),
    sa.Column("url", sa.String(500), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    _ms("started_at"),
    _ms("seen_at"),
    sa.PrimaryKeyConstraint("deployment_id", "url"),
)


# --- monitoring (revision 0010) ---------------------------------------------------------------

# A reference distribution built once (from a dataset version, or from the training data a model
# version's lineage names) into a stored sketch: quantile edges, histograms, category counts and a
# bounded row sample. Monitors read it instead of the raw reference.
monitor_references = sa.Table(
    "monitor_references",
    metadata,
    _id(primary_key=True),
    sa.Column("name", sa.String(limits.MONITOR_NAME), nullable=False, unique=True),
    sa.Column("source", sa.String(600), nullable=False),
    _fk("dataset_version_id", "dataset_versions.id", nullable=True, ondelete="SET NULL"),
    _fk("model_version_id", "model_versions.id", nullable=True, ondelete="SET NULL"),
    _blob("sketch_blob"),
    sa.Column("columns_json", sa.Text, nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    _ms("created_at"),
)

# A monitor watches one deployment's prediction log (by name: the log is keyed by name) against
# a reference; its settings (window, schedule, tests, thresholds, alert rules, webhook) are JSON.
monitors = sa.Table(
    "monitors",
    metadata,
    _id(primary_key=True),
    sa.Column("name", sa.String(limits.MONITOR_NAME), nullable=False, unique=True),
    sa.Column("deployment", sa.String(limits.DEPLOYMENT_NAME), nullable=False),
    sa.Column("reference_spec", sa.String(600), nullable=False),
    _fk("reference_id", "monitor_references.id", nullable=True, ondelete="SET NULL"),
    sa.Column("spec_json", sa.Text, nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("created_by", sa.String(200), nullable=False),
    _ms("created_at"),
    _ms("updated_at"),
    _ms("last_run_at", nullable=True),
    sa.Index(None, "deployment"),
)

# One monitoring pass over a window: its verdict and summary (drifted columns, performance,
# chart data) as JSON; the per-test figures go to monitor_results as a time series.
monitor_runs = sa.Table(
    "monitor_runs",
    metadata,
    _id(primary_key=True),
    _fk("monitor_id", "monitors.id"),
    _ms("started_at"),
    _ms("finished_at"),
    _ms("window_start"),
    _ms("window_end"),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("dataset_drift", sa.Boolean),
    sa.Column("summary_json", sa.Text, nullable=False),
    sa.Column("error", sa.Text),
    sa.Index(None, "monitor_id", "window_end"),
)

# Per run, per column, per test: the statistic, its threshold and verdict (p-value when asked).
monitor_results = sa.Table(
    "monitor_results",
    metadata,
    _fk("run_id", "monitor_runs.id"),
    _fk("monitor_id", "monitors.id"),
    sa.Column("column_name", sa.String(limits.KEY), nullable=False),
    sa.Column("test", sa.String(50), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("statistic", sa.Float, nullable=False),
    sa.Column("threshold", sa.Float, nullable=False),
    sa.Column("p_value", sa.Float),
    sa.Column("drifted", sa.Boolean, nullable=False),
    _ms("window_end"),
    sa.PrimaryKeyConstraint("run_id", "column_name", "test"),
    sa.Index(None, "monitor_id", "column_name", "test", "window_end"),
)

# Delayed ground truth, joined to the prediction log by request id (and row within a request).
# The latest label for a row wins; label_json holds the value as JSON (number, string, bool).
ground_truth = sa.Table(
    "ground_truth",
    metadata,
    sa.Column("deployment", sa.String(limits.DEPLOYMENT_NAME), nullable=False),
    sa.Column("request_id", sa.String(limits.REQUEST_ID), nullable=False),
    sa.Column("row", sa.Integer, nullable=False),
    sa.Column("label_json", sa.Text, nullable=False),
    _ms("logged_at"),
    sa.PrimaryKeyConstraint("deployment", "request_id", "row"),
    sa.Index(None, "deployment", "logged_at"),
)

# Alert events: one open row per monitor and rule while the condition persists (open_key holds
# the rule key while open, NULL once resolved, so the unique constraint deduplicates only open
# alerts on every backend); resolved rows stay as history.
alerts = sa.Table(
    "alerts",
    metadata,
    _id(primary_key=True),
    _fk("monitor_id", "monitors.id"),
    sa.Column("rule_key", sa.String(400), nullable=False),
    sa.Column("open_key", sa.String(400)),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("value", sa.Float),
    sa.Column("threshold", sa.Float, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("occurrences", sa.Integer, nullable=False),
    _fk("first_run_id", "monitor_runs.id", nullable=True, ondelete="SET NULL"),
    _fk("last_run_id", "monitor_runs.id", nullable=True, ondelete="SET NULL"),
    _ms("opened_at"),
    _ms("last_seen_at"),
    _ms("resolved_at", nullable=True),
    sa.Column("delivery_json", sa.Text),
    sa.UniqueConstraint("monitor_id", "open_key"),
    sa.Index(None, "monitor_id", "status"),
)


# --- pipelines (revision 0011) ------------------------------------------------------------------

# A pipeline run is also a tracked run (run_id); its process says it is alive through
# heartbeat_at, so a run whose process was killed can be recognised and resumed.
pipeline_runs = sa.Table(
    "pipeline_runs",
    metadata,
    _id(primary_key=True),
    sa.Column("pipeline", sa.String(limits.PIPELINE_NAME), nullable=False),
    sa.Column("name", sa.String(limits.RUN_NAME), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    _fk("run_id", "runs.id", nullable=True, ondelete="SET NULL"),
    sa.Column("params_json", sa.Text, nullable=False),
    sa.Column("executor", sa.String(50), nullable=False),
    _fk("resumed_from", "pipeline_runs.id", nullable=True, ondelete="SET NULL"),
    sa.Column("code_digest", sa.String(64), nullable=False),
    sa.Column("result_json", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    _ms("started_at"),
    _ms("heartbeat_at"),
    _ms("finished_at", nullable=True),
    sa.Index(None, "pipeline", "started_at"),
    sa.Index(None, "status"),
)

# One call of a step in a pipeline run. cache_key indexes the cross-run cache; outputs_json
# lists ArtifactRefs (artifacts of run_id, the step's nested run, or of cached_from's run).
step_runs = sa.Table(
    "step_runs",
    metadata,
    _id(primary_key=True),
    _fk("pipeline_run_id", "pipeline_runs.id"),
    sa.Column("invocation", sa.String(limits.RUN_NAME), nullable=False),
    sa.Column("step", sa.String(limits.RUN_NAME), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("cache_key", sa.String(64), nullable=False),
    sa.Column("cache_reason", sa.Text, nullable=False),
    _fk("run_id", "runs.id", nullable=True, ondelete="SET NULL"),
    _fk("cached_from", "step_runs.id", nullable=True, ondelete="SET NULL"),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("inputs_json", sa.Text, nullable=False),
    sa.Column("outputs_json", sa.Text, nullable=False),
    sa.Column("key_parts_json", sa.Text, nullable=False),
    sa.Column("error", sa.Text),
    _ms("started_at"),
    _ms("finished_at", nullable=True),
    sa.Index(None, "pipeline_run_id", "started_at"),
    sa.Index(None, "cache_key", "status"),
)


# --- the loop: gates, schedules, loops (revision 0011) -----------------------------------------

# A gate checked on one model version and holdout dataset version: each rule's value and verdict.
# A gate checked on a model version (a holdout) or, from revision 0017, on a model or prompt
# version's evaluation run (evaluation_run_id; evidence_json keeps the dataset's content hash
# and the scorer and judge versions as the run recorded them).
gate_results = sa.Table(
    "gate_results",
    metadata,
    _id(primary_key=True),
    sa.Column("gate", sa.String(limits.LOOP_NAME), nullable=False),
    _fk("model_version_id", "model_versions.id", nullable=True),
    _fk("dataset_version_id", "dataset_versions.id", nullable=True, ondelete="SET NULL"),
    sa.Column("dataset", sa.String(600), nullable=False),
    sa.Column("champion_version", sa.Integer),
    sa.Column("passed", sa.Boolean, nullable=False),
    sa.Column("outcomes_json", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("spec_json", sa.Text, nullable=False),
    _fk("pipeline_run_id", "pipeline_runs.id", nullable=True, ondelete="SET NULL"),
    sa.Column("created_by", sa.String(200), nullable=False),
    _ms("created_at"),
    _fk("prompt_version_id", "prompt_versions.id", nullable=True),
    _fk("evaluation_run_id", "runs.id", nullable=True, ondelete="SET NULL"),
    sa.Column("evidence_json", sa.Text),
    sa.Index(None, "model_version_id", "created_at"),
    sa.Index(None, "prompt_version_id", "created_at"),
)

# A job started by a trigger: a pipeline (module:function) or a loop's iteration.
schedules = sa.Table(
    "schedules",
    metadata,
    _id(primary_key=True),
    sa.Column("name", sa.String(limits.SCHEDULE_NAME), nullable=False, unique=True),
    sa.Column("target_kind", sa.String(20), nullable=False),
    sa.Column("target", sa.String(limits.PIPELINE_NAME), nullable=False),
    sa.Column("trigger", sa.String(600), nullable=False),
    sa.Column("params_json", sa.Text, nullable=False),
    sa.Column("cwd", sa.Text),
    sa.Column("enabled", sa.Boolean, nullable=False),
    _ms("next_fire_at", nullable=True),
    _ms("last_fired_at", nullable=True),
    sa.Column("cursor", sa.String(200)),
    sa.Column("created_by", sa.String(200), nullable=False),
    _ms("created_at"),
    _ms("updated_at"),
)

# One firing; the unique (schedule, event_key) is what keeps two schedulers from starting the
# same job twice.
schedule_fires = sa.Table(
    "schedule_fires",
    metadata,
    _id(primary_key=True),
    _fk("schedule_id", "schedules.id"),
    sa.Column("event_key", sa.String(200), nullable=False),
    _ms("due_at"),
    _ms("fired_at"),
    sa.Column("owner", sa.String(200), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    _fk("pipeline_run_id", "pipeline_runs.id", nullable=True, ondelete="SET NULL"),
    sa.Column("iteration_id", sa.String(32)),
    sa.Column("detail", sa.Text),
    _ms("finished_at", nullable=True),
    sa.UniqueConstraint("schedule_id", "event_key"),
    sa.Index(None, "schedule_id", "fired_at"),
)

# A continuous-training loop of one deployment; its settings (gates, triggers, canary, comparison)
# are JSON in spec_json.
loops = sa.Table(
    "loops",
    metadata,
    _id(primary_key=True),
    sa.Column("name", sa.String(limits.LOOP_NAME), nullable=False, unique=True),
    sa.Column("deployment", sa.String(limits.DEPLOYMENT_NAME), nullable=False),
    sa.Column("model", sa.String(limits.MODEL_NAME), nullable=False),
    sa.Column("pipeline", sa.String(limits.PIPELINE_NAME), nullable=False),
    sa.Column("spec_json", sa.Text, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("created_by", sa.String(200), nullable=False),
    _ms("created_at"),
    _ms("updated_at"),
)

# One turn of a loop: a persisted state machine. in_flight holds the loop's id while the
# iteration is active and NULL once it ends, so the unique constraint allows one in flight.
loop_iterations = sa.Table(
    "loop_iterations",
    metadata,
    _id(primary_key=True),
    _fk("loop_id", "loops.id"),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("state", sa.String(30), nullable=False),
    sa.Column("in_flight", sa.String(32)),
    sa.Column("trigger", sa.String(600), nullable=False),
    sa.Column("trigger_detail", sa.Text),
    _fk("pipeline_run_id", "pipeline_runs.id", nullable=True, ondelete="SET NULL"),
    _fk("model_version_id", "model_versions.id", nullable=True, ondelete="SET NULL"),
    sa.Column("model_version", sa.Integer),
    _fk("gate_result_id", "gate_results.id", nullable=True, ondelete="SET NULL"),
    sa.Column("approval_request_id", sa.String(32)),
    sa.Column("canary_revision", sa.Integer),
    _ms("canary_started_at", nullable=True),
    sa.Column("comparison_json", sa.Text),
    sa.Column("reason", sa.Text),
    sa.Column("lease_owner", sa.String(200)),
    _ms("lease_until", nullable=True),
    _ms("created_at"),
    _ms("updated_at"),
    _ms("finished_at", nullable=True),
    sa.UniqueConstraint("loop_id", "number"),
    sa.UniqueConstraint("in_flight"),
    sa.Index(None, "model_version_id"),
)

# Every move of an iteration, in order (the audit log holds the same, hash-chained).
loop_transitions = sa.Table(
    "loop_transitions",
    metadata,
    _fk("iteration_id", "loop_iterations.id"),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("from_state", sa.String(30)),
    sa.Column("to_state", sa.String(30), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("actor", sa.String(200), nullable=False),
    _ms("at"),
    sa.PrimaryKeyConstraint("iteration_id", "seq"),
)


# Feature definitions (issue 15): entities, feature views, on-demand feature views and feature
# services, each version immutable and identified by the BLAKE3 digest of its canonical spec
# (features/spec.py). Re-applying the same spec is a no-op; a changed spec is version + 1.
feature_definitions = sa.Table(
    "feature_definitions",
    metadata,
    _id(primary_key=True),
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("spec_json", sa.Text, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    _ms("created_at"),
    sa.UniqueConstraint("kind", "name", "version"),
    sa.Index(None, "kind", "name", "digest"),
)

# Every load into the online store: a materialization window, an incremental run or a push.
# The incremental watermark of a view is the newest end_at of its rows for that store; it lives
# here, not in the definition, so applying a definition again never resets it.
feature_materializations = sa.Table(
    "feature_materializations",
    metadata,
    _id(primary_key=True),
    sa.Column("view", sa.String(200), nullable=False),
    sa.Column("view_version", sa.Integer, nullable=False),
    sa.Column("store", sa.String(300), nullable=False),
    sa.Column("mode", sa.String(20), nullable=False),
    _ms("start_at", nullable=True),
    _ms("end_at", nullable=True),
    sa.Column("rows", sa.BigInteger, nullable=False),
    _ms("newest_event_at", nullable=True),
    sa.Column("created_by", sa.String(200), nullable=False),
    _ms("created_at"),
    sa.Index(None, "view", "store", "created_at"),
)


# --- prompts (revision 0013, issue 19) ----------------------------------------

# Prompt templates as registry items: immutable, gap-free numbered versions, aliases and tags;
# alias moves follow the prompt's approval policy (requests in approval_requests, kind "prompt").
prompts = sa.Table(
    "prompts",
    metadata,
    _id(primary_key=True),
    sa.Column("name", sa.String(limits.PROMPT_NAME), nullable=False, unique=True),
    sa.Column("description", sa.Text),
    sa.Column("approval_policy_json", sa.Text),
    sa.Column("created_by", sa.String(200)),
    _ms("created_at"),
    _ms("updated_at"),
)
prompt_tags = _tags("prompt_tags", "prompts", "prompt_id")

prompt_versions = sa.Table(
    "prompt_versions",
    metadata,
    _id(primary_key=True),
    _fk("prompt_id", "prompts.id"),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("kind", sa.String(10), nullable=False),  # text | chat
    # The template as JSON: a string, or a list of {"role", "content"} messages.
    sa.Column("template_json", sa.Text, nullable=False),
    sa.Column("variables_json", sa.Text, nullable=False),
    sa.Column("model_config_json", sa.Text),
    sa.Column("response_format_json", sa.Text),
    sa.Column("commit_message", sa.Text),
    # BLAKE3 of the canonical JSON of kind, template, model config and response format.
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("created_by", sa.String(200)),
    _ms("created_at"),
    sa.UniqueConstraint("prompt_id", "version"),
)
prompt_version_tags = _tags("prompt_version_tags", "prompt_versions", "version_id")

prompt_aliases = _aliases("prompt_aliases", "prompts", "prompt_id", "prompt_versions")


# --- traces (revision 0014, issue 19) -----------------------------------------

# Telemetry, not governed state: ingesting a trace writes no audit event (changes to tags and
# assessments do). OTel fixes the ids: 32 hex per trace, 16 per span. The summary columns are
# derived from the spans on every record, so a search never reads spans.
traces = sa.Table(
    "traces",
    metadata,
    sa.Column("trace_id", sa.String(32), primary_key=True),
    _fk("experiment_id", "experiments.id", nullable=True, ondelete="SET NULL"),
    _ms("request_time"),
    sa.Column("duration_ms", sa.BigInteger),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("request_preview", sa.Text, nullable=False),
    sa.Column("response_preview", sa.Text, nullable=False),
    sa.Column("input_tokens", sa.BigInteger),
    sa.Column("output_tokens", sa.BigInteger),
    sa.Column("cost_usd", sa.Float),
    sa.Column("span_count", sa.Integer, nullable=False),
    _ms("created_at"),
    _ms("updated_at"),
    sa.Index(None, "experiment_id", "request_time"),
    sa.Index(None, "request_time"),
)


def _trace_key_values(name: str) -> sa.Table:
    """Tags (mutable, user-facing) or metadata (set when recorded: ``mlflow.sourceRun``...)."""
    return sa.Table(
        name,
        metadata,
        sa.Column(
            "trace_id",
            sa.String(32),
            sa.ForeignKey("traces.trace_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("key", sa.String(limits.KEY), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("trace_id", "key"),
    )


trace_tags = _trace_key_values("trace_tags")
trace_metadata = _trace_key_values("trace_metadata")
spans = sa.Table(
    "spans",
    metadata,
    sa.Column(
        "trace_id",
        sa.String(32),
        sa.ForeignKey("traces.trace_id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("span_id", sa.String(16), nullable=False),
    sa.Column("parent_id", sa.String(16)),
    sa.Column("name", sa.String(500), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("start_ns", sa.BigInteger, nullable=False),
    sa.Column("end_ns", sa.BigInteger),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("status_message", sa.Text, nullable=False),
    sa.Column("attributes_json", sa.Text, nullable=False),
    sa.Column("events_json", sa.Text, nullable=False),
    sa.PrimaryKeyConstraint("trace_id", "span_id"),
)
# kind: prompt_version | run_id | model_version | gateway_route | deployment; indexed by target
# for the lineage walk (the traces of a prompt version).
trace_links = sa.Table(
    "trace_links",
    metadata,
    sa.Column(
        "trace_id",
        sa.String(32),
        sa.ForeignKey("traces.trace_id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("target", sa.String(300), nullable=False),
    sa.PrimaryKeyConstraint("trace_id", "kind", "target"),
    sa.Index(None, "kind", "target"),
)
assessments = sa.Table(
    "assessments",
    metadata,
    _id(primary_key=True),
    sa.Column(
        "trace_id",
        sa.String(32),
        sa.ForeignKey("traces.trace_id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("name", sa.String(250), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("source_type", sa.String(20), nullable=False),
    sa.Column("source_id", sa.String(250), nullable=False),
    sa.Column("value_json", sa.Text),
    sa.Column("rationale", sa.Text),
    sa.Column("error_json", sa.Text),
    sa.Column("span_id", sa.String(16)),
    sa.Column("valid", sa.Boolean, nullable=False),
    sa.Column("overrides", sa.String(32)),
    sa.Column("metadata_json", sa.Text, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    _ms("created_at"),
    _ms("updated_at"),
    sa.Index(None, "trace_id"),
)


# --- evaluation (revision 0015, issue 19) -------------------------------------

# An evaluation dataset's records live in versions of the dataset of the same name (one JSONL
# file per version, content-addressed); this row holds what MLflow's API adds around them and
# which version is current.
eval_datasets = sa.Table(
    "eval_datasets",
    metadata,
    _id(primary_key=True),
    sa.Column("name", sa.String(limits.DATASET_NAME), nullable=False, unique=True),
    _fk("dataset_id", "datasets.id"),
    _fk("version_id", "dataset_versions.id", nullable=True, ondelete="SET NULL"),
    sa.Column("schema_json", sa.Text),
    sa.Column("profile_json", sa.Text),
    sa.Column("created_by", sa.String(200)),
    sa.Column("last_updated_by", sa.String(200)),
    _ms("created_at"),
    _ms("updated_at"),
)
eval_dataset_tags = _tags("eval_dataset_tags", "eval_datasets", "eval_dataset_id")

eval_dataset_experiments = sa.Table(
    "eval_dataset_experiments",
    metadata,
    _fk("eval_dataset_id", "eval_datasets.id"),
    _fk("experiment_id", "experiments.id"),
    sa.PrimaryKeyConstraint("eval_dataset_id", "experiment_id"),
)

# Scorers by name within a scope (an experiment id, or "" for the whole installation); versions
# are immutable: code by reference + digest, a built-in with its arguments, or a judge config.
scorer_versions = sa.Table(
    "scorer_versions",
    metadata,
    _id(primary_key=True),
    sa.Column("scope", sa.String(32), nullable=False),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("reference", sa.String(500), nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("config_json", sa.Text, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    _ms("created_at"),
    sa.Column("approval_requested_by", sa.String(200)),
    _ms("approval_requested_at", nullable=True),
    sa.Column("approved_by", sa.String(200)),
    _ms("approved_at", nullable=True),
    sa.UniqueConstraint("scope", "name", "version"),
    sa.Index(None, "scope", "name", "digest"),
)

# A judge version's agreement with human labels on one dataset version.
judge_agreements = sa.Table(
    "judge_agreements",
    metadata,
    _id(primary_key=True),
    _fk("scorer_version_id", "scorer_versions.id"),
    _fk("dataset_version_id", "dataset_versions.id"),
    sa.Column("label", sa.String(250), nullable=False),
    sa.Column("metrics_json", sa.Text, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    _ms("created_at"),
    sa.Index(None, "scorer_version_id", "created_at"),
)

# One row per evaluation run: what a gate reads (the run holds params, metrics, the table).
evaluation_runs = sa.Table(
    "evaluation_runs",
    metadata,
    _fk("run_id", "runs.id"),
    _fk("dataset_version_id", "dataset_versions.id", nullable=True, ondelete="SET NULL"),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("target", sa.String(500), nullable=False),
    sa.Column("scorers_json", sa.Text, nullable=False),
    sa.Column("aggregates_json", sa.Text, nullable=False),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("failed_rows", sa.Integer, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    _ms("created_at"),
    sa.PrimaryKeyConstraint("run_id"),
    sa.Index(None, "dataset_version_id"),
)


# --- gateway (revision 0016, issue 19) ----------------------------------------

# A route of the LLM gateway: its targets, traffic split, fallbacks, limits and guardrails as one
# checked JSON document (gateway/config.py), changed whole and audited.
gateway_routes = sa.Table(
    "gateway_routes",
    metadata,
    _id(primary_key=True),
    sa.Column("name", sa.String(limits.DEPLOYMENT_NAME), nullable=False, unique=True),
    sa.Column("config_json", sa.Text, nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    _ms("created_at"),
    sa.Column("updated_by", sa.String(200), nullable=False),
    _ms("updated_at"),
)

# Upstream credentials, encrypted (Fernet) with the server's secret key; ``mask`` is the only
# form ever shown.
gateway_secrets = sa.Table(
    "gateway_secrets",
    metadata,
    _id(primary_key=True),
    sa.Column("name", sa.String(limits.DEPLOYMENT_NAME), nullable=False, unique=True),
    sa.Column("ciphertext", sa.Text, nullable=False),
    sa.Column("mask", sa.String(40), nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    _ms("created_at"),
    sa.Column("updated_by", sa.String(200), nullable=False),
    _ms("updated_at"),
)

# One row per gateway request, written in batches off the request path.
gateway_usage = sa.Table(
    "gateway_usage",
    metadata,
    _id(primary_key=True),
    sa.Column("route", sa.String(limits.DEPLOYMENT_NAME), nullable=False),
    sa.Column("target", sa.String(64), nullable=False),
    sa.Column("user_name", sa.String(200), nullable=False),
    sa.Column("endpoint", sa.String(20), nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("prompt_tokens", sa.BigInteger, nullable=False),
    sa.Column("completion_tokens", sa.BigInteger, nullable=False),
    sa.Column("estimated", sa.Boolean, nullable=False),
    sa.Column("cost_usd", sa.Float),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("stream", sa.Boolean, nullable=False),
    sa.Column("trace_id", sa.String(32)),
    _ms("created_at"),
    sa.Index(None, "route", "created_at"),
    sa.Index(None, "user_name", "created_at"),
)


def blob_ref_columns() -> list[sa.Column[str]]:
    """Every column that holds a blob hash (the garbage collector's roots)."""
    return [
        column
        for table in metadata.sorted_tables
        for column in table.columns
        if column.info.get("blob_ref")
    ]
