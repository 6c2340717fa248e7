"""prompts, prompt_tags, prompt_versions, prompt_version_tags, prompt_aliases; approval requests
for prompt versions (subject_kind, prompt_version_id; version_id nullable)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 18:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def _tags(name: str, owner: str, owner_column: str) -> None:
    op.create_table(
        name,
        sa.Column(owner_column, sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            [owner_column],
            [f"{owner}.id"],
            name=op.f(f"fk_{name}_{owner_column}_{owner}"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(owner_column, "key", name=op.f(f"pk_{name}")),
    )


def upgrade() -> None:
    op.create_table(
        "prompts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("approval_policy_json", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prompts")),
        sa.UniqueConstraint("name", name=op.f("uq_prompts_name")),
    )
    _tags("prompt_tags", "prompts", "prompt_id")
    op.create_table(
        "prompt_versions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("prompt_id", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("template_json", sa.Text(), nullable=False),
        sa.Column("variables_json", sa.Text(), nullable=False),
        sa.Column("model_config_json", sa.Text(), nullable=True),
        sa.Column("response_format_json", sa.Text(), nullable=True),
        sa.Column("commit_message", sa.Text(), nullable=True),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["prompt_id"],
            ["prompts.id"],
            name=op.f("fk_prompt_versions_prompt_id_prompts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prompt_versions")),
        sa.UniqueConstraint(
            "prompt_id", "version", name=op.f("uq_prompt_versions_prompt_id_version")
        ),
    )
    _tags("prompt_version_tags", "prompt_versions", "version_id")
    op.create_table(
        "prompt_aliases",
        sa.Column("prompt_id", sa.String(length=32), nullable=False),
        sa.Column("alias", sa.String(length=100), nullable=False),
        sa.Column("version_id", sa.String(length=32), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["prompt_id"],
            ["prompts.id"],
            name=op.f("fk_prompt_aliases_prompt_id_prompts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["prompt_versions.id"],
            name=op.f("fk_prompt_aliases_version_id_prompt_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("prompt_id", "alias", name=op.f("pk_prompt_aliases")),
    )
    with _decisions_kept(), op.batch_alter_table("approval_requests", schema=None) as batch_op:
        batch_op.alter_column("version_id", existing_type=sa.String(length=32), nullable=True)
        batch_op.add_column(
            sa.Column("subject_kind", sa.String(length=20), server_default="model", nullable=False)
        )
        batch_op.add_column(sa.Column("prompt_version_id", sa.String(length=32), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_approval_requests_prompt_version_id_prompt_versions"),
            "prompt_versions",
            ["prompt_version_id"],
            ["id"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    op.execute("DELETE FROM approval_requests WHERE subject_kind = 'prompt'")
    with _decisions_kept(), op.batch_alter_table("approval_requests", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_approval_requests_prompt_version_id_prompt_versions"),
            type_="foreignkey",
        )
        batch_op.drop_column("prompt_version_id")
        batch_op.drop_column("subject_kind")
        batch_op.alter_column("version_id", existing_type=sa.String(length=32), nullable=False)
    for table in (
        "prompt_aliases",
        "prompt_version_tags",
        "prompt_versions",
        "prompt_tags",
        "prompts",
    ):
        op.drop_table(table)


class _decisions_kept:
    """Keep approval_decisions through a SQLite table rebuild of approval_requests.

    SQLite rebuilds a table to change a column (copy, DROP, rename), and with foreign keys on
    the DROP deletes the rows that reference it: every decision, through ON DELETE CASCADE.
    The pragma cannot be switched inside the migration's transaction, so the decisions are
    copied aside and put back. PostgreSQL alters the column in place.
    """

    def __enter__(self) -> None:
        self.sqlite = op.get_bind().dialect.name == "sqlite"
        if self.sqlite:
            op.execute("CREATE TEMP TABLE kept_decisions AS SELECT * FROM approval_decisions")

    def __exit__(self, *exc: object) -> None:
        if self.sqlite and exc[0] is None:
            op.execute(
                "INSERT INTO approval_decisions SELECT * FROM kept_decisions "
                "WHERE id NOT IN (SELECT id FROM approval_decisions)"
            )
            op.execute("DROP TABLE kept_decisions")
