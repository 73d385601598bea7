"""Runs and run steps.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("thread_id", sa.String(64), nullable=False),
        sa.Column("assistant_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("sequence", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.Integer, nullable=False),
        sa.Column("expires_at", sa.Integer, nullable=True),
        sa.Column("started_at", sa.Integer, nullable=True),
        sa.Column("cancelled_at", sa.Integer, nullable=True),
        sa.Column("failed_at", sa.Integer, nullable=True),
        sa.Column("completed_at", sa.Integer, nullable=True),
        sa.Column("required_action", sa.JSON, nullable=True),
        sa.Column("last_error", sa.JSON, nullable=True),
        sa.Column("incomplete_details", sa.JSON, nullable=True),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("instructions", sa.Text, nullable=False),
        sa.Column("additional_instructions", sa.Text, nullable=True),
        sa.Column("tools", sa.JSON, nullable=False),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("usage", sa.JSON, nullable=True),
        sa.Column("temperature", sa.Float, nullable=True),
        sa.Column("top_p", sa.Float, nullable=True),
        sa.Column("max_prompt_tokens", sa.Integer, nullable=True),
        sa.Column("max_completion_tokens", sa.Integer, nullable=True),
        sa.Column("truncation_strategy", sa.JSON, nullable=True),
        sa.Column("tool_choice", sa.JSON, nullable=True),
        sa.Column("parallel_tool_calls", sa.Boolean, nullable=False),
        sa.Column("response_format", sa.JSON, nullable=True),
    )
    op.create_index("ix_runs_project_id", "runs", ["project_id"])
    op.create_index("ix_runs_thread", "runs", ["project_id", "thread_id", "created_at"])
    op.create_index("ix_runs_status", "runs", ["status"])

    op.create_table(
        "run_steps",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("thread_id", sa.String(64), nullable=False),
        sa.Column("assistant_id", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("step_details", sa.JSON, nullable=False),
        sa.Column("tool_results", sa.JSON, nullable=False),
        sa.Column("last_error", sa.JSON, nullable=True),
        sa.Column("created_at", sa.Integer, nullable=False),
        sa.Column("expired_at", sa.Integer, nullable=True),
        sa.Column("cancelled_at", sa.Integer, nullable=True),
        sa.Column("failed_at", sa.Integer, nullable=True),
        sa.Column("completed_at", sa.Integer, nullable=True),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("usage", sa.JSON, nullable=True),
    )
    op.create_index("ix_run_steps_project_id", "run_steps", ["project_id"])
    op.create_index("ix_run_steps_run", "run_steps", ["project_id", "run_id", "position"])


def downgrade() -> None:
    op.drop_table("run_steps")
    op.drop_table("runs")
