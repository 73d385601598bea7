"""Containers and the files they hold.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "containers",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("sequence", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("memory_limit", sa.String(8), nullable=False),
        sa.Column("expires_after_minutes", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Integer, nullable=False),
        sa.Column("last_active_at", sa.Integer, nullable=False),
        sa.Column("session_id", sa.String(64), nullable=True),
        sa.Column("thread_id", sa.String(64), nullable=True, unique=True),
    )
    op.create_index("ix_containers_project_id", "containers", ["project_id"])
    op.create_table(
        "container_files",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("container_id", sa.String(64), nullable=False),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("sequence", sa.BigInteger, nullable=False),
        sa.Column("path", sa.String(4096), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("bytes", sa.Integer, nullable=False),
        sa.Column("file_id", sa.String(64), nullable=True),
        sa.Column("created_at", sa.Integer, nullable=False),
    )
    op.create_index("ix_container_files_container_id", "container_files", ["container_id"])


def downgrade() -> None:
    op.drop_index("ix_container_files_container_id", table_name="container_files")
    op.drop_table("container_files")
    op.drop_index("ix_containers_project_id", table_name="containers")
    op.drop_table("containers")
