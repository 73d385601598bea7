"""Several replicas on one PostgreSQL: events of runs and responses, live replicas, who drives what.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stream_events",
        sa.Column("stream_id", sa.String(64), primary_key=True),  # a run's or a response's id
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
    )
    op.create_table(
        "replicas",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("heartbeat_at", sa.Float, nullable=False),
    )
    op.create_table(
        "stream_owners",
        sa.Column("stream_id", sa.String(64), primary_key=True),
        sa.Column("replica_id", sa.String(64), nullable=False, index=True),
    )


def downgrade() -> None:
    op.drop_table("stream_owners")
    op.drop_table("replicas")
    op.drop_table("stream_events")
