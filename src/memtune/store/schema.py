"""The current schema as SQLAlchemy Core tables (what queries are written against).

Tables are *created and changed* only by the named migrations in ``migrations.py``;
this module must describe the schema those migrations produce.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

migrations_table = sa.Table(
    "memtune_migrations",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
)

guidelines = sa.Table(
    "guidelines",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("scope_type", sa.String(16), nullable=False),
    sa.Column("scope_id", sa.String(200), nullable=False, server_default=""),
    sa.Column("name", sa.String(300), nullable=False),
    sa.Column("category", sa.String(64), nullable=False),
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Column("is_active", sa.Boolean, nullable=False),
    sa.Column("metadata_json", sa.Text, nullable=False, server_default="{}"),
    sa.Column("current_version", sa.Integer, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("norm_hash", sa.String(64), nullable=False),
    sa.Column("search_text", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("scope_type", "scope_id", "name", name="uq_guideline_scope_name"),
)

guideline_versions = sa.Table(
    "guideline_versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("guideline_id", sa.Integer, sa.ForeignKey("guidelines.id"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("content", sa.Text, nullable=False),
    sa.Column("rationale", sa.Text),
    sa.Column("examples_json", sa.Text, nullable=False, server_default="{}"),
    sa.Column("source_file", sa.Text),
    sa.Column("source_line", sa.Integer),
    sa.Column("source_kind", sa.String(64)),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("change_reason", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("guideline_id", "version", name="uq_version"),
)

guideline_tags = sa.Table(
    "guideline_tags",
    metadata,
    sa.Column("guideline_id", sa.Integer, sa.ForeignKey("guidelines.id"), primary_key=True),
    sa.Column("tag", sa.String(200), primary_key=True),
)

guideline_sources = sa.Table(
    "guideline_sources",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("guideline_id", sa.Integer, sa.ForeignKey("guidelines.id"), nullable=False),
    sa.Column("source_file", sa.Text, nullable=False),
    sa.Column("source_line", sa.Integer),
    sa.Column("source_kind", sa.String(64)),
    sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("guideline_id", "source_file", "source_line", name="uq_source"),
)

ingest_runs = sa.Table(
    "ingest_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("paths_json", sa.Text, nullable=False),
    sa.Column("summary_json", sa.Text, nullable=False, server_default="{}"),
)

secret_findings = sa.Table(
    "secret_findings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("ingest_runs.id"), nullable=False),
    sa.Column("file", sa.Text, nullable=False),
    sa.Column("line", sa.Integer),
    sa.Column("secret_type", sa.String(120), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
