"""Assistants, threads and messages.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "assistants",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("project_id", sa.String(64), nullable=False, index=True),
        sa.Column("sequence", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.Integer, nullable=False),
        sa.Column("name", sa.String(256), nullable=True),
        sa.Column("description", sa.String(512), nullable=True),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("instructions", sa.Text, nullable=True),
        sa.Column("tools", sa.JSON, nullable=False),
        sa.Column("tool_resources", sa.JSON, nullable=True),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("temperature", sa.Float, nullable=True),
        sa.Column("top_p", sa.Float, nullable=True),
        sa.Column("response_format", sa.JSON, nullable=True),
    )
    op.create_table(
        "threads",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("project_id", sa.String(64), nullable=False, index=True),
        sa.Column("created_at", sa.Integer, nullable=False),
        sa.Column("tool_resources", sa.JSON, nullable=True),
        sa.Column("metadata", sa.JSON, nullable=False),
    )
    op.create_table(
        "messages",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("project_id", sa.String(64), nullable=False, index=True),
        sa.Column("thread_id", sa.String(64), nullable=False),
        sa.Column("sequence", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.Integer, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("content", sa.JSON, nullable=False),
        sa.Column("attachments", sa.JSON, nullable=True),
        sa.Column("assistant_id", sa.String(64), nullable=True),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("completed_at", sa.Integer, nullable=True),
        sa.Column("incomplete_at", sa.Integer, nullable=True),
        sa.Column("incomplete_details", sa.JSON, nullable=True),
        sa.Column("metadata", sa.JSON, nullable=False),
    )
    op.create_index("ix_messages_thread", "messages", ["project_id", "thread_id", "sequence"])


def downgrade() -> None:
    op.drop_index("ix_messages_thread", table_name="messages")
    op.drop_table("messages")
    op.drop_table("threads")
    op.drop_table("assistants")
