"""Code interpreter sessions per project, for usage.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "session_usage",
        sa.Column("session_id", sa.String(64), primary_key=True),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("started_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_session_usage_time", "session_usage", ["started_at", "project_id"])


def downgrade() -> None:
    op.drop_index("ix_session_usage_time", table_name="session_usage")
    op.drop_table("session_usage")
