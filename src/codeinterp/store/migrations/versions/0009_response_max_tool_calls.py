"""A response keeps the `max_tool_calls` it was created with (its object shows it).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("responses", sa.Column("max_tool_calls", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("responses", "max_tool_calls")
