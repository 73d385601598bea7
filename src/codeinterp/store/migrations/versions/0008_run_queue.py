"""The run queue on PostgreSQL: procrastinate's schema (its tables, functions and triggers), as
the installed procrastinate ships it. SQLite has no queue (one process runs its own runs).

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    from procrastinate.schema import SchemaManager
    from sqlalchemy.util import await_only

    # Many statements with dollar-quoted function bodies: sent as one simple query, which asyncpg
    # does when given no arguments (SQLAlchemy's own execute would prepare it as one statement).
    driver = bind.connection.dbapi_connection.driver_connection
    await_only(driver.execute(SchemaManager.get_schema()))


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute("DROP TABLE IF EXISTS procrastinate_periodic_defers, procrastinate_events, procrastinate_jobs, "
               "procrastinate_workers, procrastinate_version CASCADE")
    op.execute("DROP TYPE IF EXISTS procrastinate_job_status, procrastinate_job_event_type, "
               "procrastinate_job_to_defer_v1 CASCADE")
