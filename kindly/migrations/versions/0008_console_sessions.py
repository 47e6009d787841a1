"""console sessions (a keyed hash of each login's random token, never the token) and failed console logins,
both in the database so every gateway worker shares them

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-02 10:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_table(
        "console_login_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_console_login_failures_ip_at", "console_login_failures", ["ip", "at"])
    op.create_index("ix_console_login_failures_at", "console_login_failures", ["at"])


def downgrade() -> None:
    op.drop_index("ix_console_login_failures_at", "console_login_failures")
    op.drop_index("ix_console_login_failures_ip_at", "console_login_failures")
    op.drop_table("console_login_failures")
    op.drop_table("console_sessions")
