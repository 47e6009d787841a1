"""follow-through: the payments feed, each promised part's status and paid amount, and follow-ups the task
queue runs (a due moment, attempts, the last error, a unique key, the handoff, promise or part they serve)

Revision ID: 0006
Revises: 0007
Create Date: 2026-12-01 14:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "payments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("amount", sa.Numeric(14, 2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("paid_on", sa.Date(), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("reference", name="uq_payments_reference"),
    )
    op.create_index("ix_payments_account_id", "payments", ["account_id"])

    with op.batch_alter_table("promises") as batch:
        # "partially_kept" is 14 characters.
        batch.alter_column("status", existing_type=sa.String(length=12), type_=sa.String(length=16), existing_nullable=False)
    with op.batch_alter_table("promise_installments") as batch:
        batch.add_column(sa.Column("status", sa.String(length=16), nullable=False, server_default="open"))
        batch.add_column(sa.Column("paid", sa.Numeric(14, 2), nullable=False, server_default="0"))
    # The sweep looks for parts still open past their due date, and parts with a reminder coming.
    op.create_index("ix_promise_installments_status_due_date", "promise_installments", ["status", "due_date"])

    with op.batch_alter_table("follow_ups") as batch:
        batch.add_column(sa.Column("due_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("last_error", sa.Text(), nullable=True))
        batch.add_column(sa.Column("key", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("handoff_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("promise_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("installment_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_unique_constraint("uq_follow_ups_key", ["key"])
        batch.create_foreign_key("fk_follow_ups_handoff", "handoffs", ["handoff_id"], ["id"])
        batch.create_foreign_key("fk_follow_ups_promise", "promises", ["promise_id"], ["id"])
        batch.create_foreign_key("fk_follow_ups_installment", "promise_installments", ["installment_id"], ["id"])
        batch.create_index("ix_follow_ups_status", ["status"])


def downgrade() -> None:
    with op.batch_alter_table("follow_ups") as batch:
        batch.drop_index("ix_follow_ups_status")
        batch.drop_constraint("fk_follow_ups_installment", type_="foreignkey")
        batch.drop_constraint("fk_follow_ups_promise", type_="foreignkey")
        batch.drop_constraint("fk_follow_ups_handoff", type_="foreignkey")
        batch.drop_constraint("uq_follow_ups_key", type_="unique")
        for column in ("closed_at", "enqueued_at", "installment_id", "promise_id", "handoff_id", "key", "last_error", "attempts", "due_at"):
            batch.drop_column(column)
    op.drop_index("ix_promise_installments_status_due_date", "promise_installments")
    with op.batch_alter_table("promise_installments") as batch:
        batch.drop_column("paid")
        batch.drop_column("status")
    with op.batch_alter_table("promises") as batch:
        batch.alter_column("status", existing_type=sa.String(length=16), type_=sa.String(length=12), existing_nullable=False)
    op.drop_index("ix_payments_account_id", "payments")
    op.drop_table("payments")
