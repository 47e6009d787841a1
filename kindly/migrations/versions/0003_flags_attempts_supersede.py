"""account flags with history, verification attempts on the account, superseded promises, pending receipts

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 03:00:00
"""
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

OLD_FLAG_COLUMNS = ("wrong_number", "cease", "dispute", "legal_hold")


def upgrade() -> None:
    op.create_table(
        "account_flags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("flag", sa.String(length=16), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("set_by", sa.String(length=64), nullable=False),
        sa.Column("set_reason", sa.Text(), nullable=False),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cleared_by", sa.String(length=64), nullable=True),
        sa.Column("cleared_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_account_flags_account_id", "account_flags", ["account_id"])
    # At most one flag of a kind in force per account.
    op.create_index(
        "uq_account_flags_in_force", "account_flags", ["account_id", "flag"], unique=True,
        sqlite_where=sa.text("cleared_at IS NULL"), postgresql_where=sa.text("cleared_at IS NULL"),
    )
    accounts = sa.table("accounts", sa.column("id", sa.Integer), *(sa.column(c, sa.Boolean) for c in OLD_FLAG_COLUMNS))
    flags = sa.table(
        "account_flags", sa.column("account_id", sa.Integer), sa.column("flag", sa.String), sa.column("set_at", sa.DateTime),
        sa.column("set_by", sa.String), sa.column("set_reason", sa.Text),
    )
    connection = op.get_bind()
    now = datetime.now(timezone.utc)
    for column in OLD_FLAG_COLUMNS:
        rows = connection.execute(sa.select(accounts.c.id).where(accounts.c[column].is_(True))).all()
        if rows:
            connection.execute(flags.insert(), [
                {"account_id": r.id, "flag": column, "set_at": now, "set_by": "migration", "set_reason": "carried over"}
                for r in rows
            ])
    with op.batch_alter_table("accounts") as batch:
        for column in OLD_FLAG_COLUMNS:
            batch.drop_column(column)

    op.create_table(
        "verification_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("conversation_id", sa.String(length=32), sa.ForeignKey("conversations.id"), nullable=True),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_verification_attempts_account_id", "verification_attempts", ["account_id"])
    op.create_index("ix_verification_attempts_at", "verification_attempts", ["at"])

    with op.batch_alter_table("promises") as batch:
        batch.add_column(sa.Column("superseded_by_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_promises_superseded_by", "promises", ["superseded_by_id"], ["id"])
    with op.batch_alter_table("contact_attempts") as batch:
        batch.add_column(sa.Column("purpose", sa.String(length=16), nullable=False, server_default="collection"))
    with op.batch_alter_table("handoff_messages") as batch:
        batch.add_column(sa.Column("channel", sa.String(length=8), nullable=True))
    with op.batch_alter_table("webhook_receipts") as batch:
        batch.add_column(sa.Column("state", sa.String(length=8), nullable=False, server_default="done"))
        batch.alter_column("response", existing_type=sa.Text(), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("webhook_receipts") as batch:
        batch.alter_column("response", existing_type=sa.Text(), nullable=False)
        batch.drop_column("state")
    with op.batch_alter_table("handoff_messages") as batch:
        batch.drop_column("channel")
    with op.batch_alter_table("contact_attempts") as batch:
        batch.drop_column("purpose")
    with op.batch_alter_table("promises") as batch:
        batch.drop_constraint("fk_promises_superseded_by", type_="foreignkey")
        batch.drop_column("superseded_by_id")
    op.drop_table("verification_attempts")
    with op.batch_alter_table("accounts") as batch:
        for column in OLD_FLAG_COLUMNS:
            batch.add_column(sa.Column(column, sa.Boolean(), nullable=False, server_default=sa.false()))
    op.drop_table("account_flags")
