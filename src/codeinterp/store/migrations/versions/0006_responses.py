"""Responses and their input and output items.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "responses",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("sequence", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("created_at", sa.Integer, nullable=False),
        sa.Column("completed_at", sa.Integer, nullable=True),
        sa.Column("instructions", sa.JSON, nullable=True),
        sa.Column("tools", sa.JSON, nullable=False),
        sa.Column("tool_choice", sa.JSON, nullable=True),
        sa.Column("parallel_tool_calls", sa.Boolean, nullable=False),
        sa.Column("temperature", sa.Float, nullable=True),
        sa.Column("top_p", sa.Float, nullable=True),
        sa.Column("max_output_tokens", sa.Integer, nullable=True),
        sa.Column("text", sa.JSON, nullable=True),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("previous_response_id", sa.String(64), nullable=True),
        sa.Column("container_id", sa.String(64), nullable=True),
        sa.Column("store", sa.Boolean, nullable=False),
        sa.Column("background", sa.Boolean, nullable=False),
        sa.Column("error", sa.JSON, nullable=True),
        sa.Column("incomplete_details", sa.JSON, nullable=True),
        sa.Column("usage", sa.JSON, nullable=True),
    )
    op.create_index("ix_responses_project_id", "responses", ["project_id"])
    op.create_index("ix_responses_status", "responses", ["status"])
    op.create_table(
        "response_items",
        sa.Column("response_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(8), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("model_text", sa.Text, nullable=True),
    )
    op.create_index("ix_response_items_id", "response_items", ["id"])


def downgrade() -> None:
    op.drop_index("ix_response_items_id", table_name="response_items")
    op.drop_table("response_items")
    op.drop_index("ix_responses_status", table_name="responses")
    op.drop_index("ix_responses_project_id", table_name="responses")
    op.drop_table("responses")
