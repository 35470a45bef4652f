"""Assessment records and teacher feedback (issue 15).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "assessment_records",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("key_id", sa.String(128), nullable=False),
        sa.Column("lesson", sa.String(200), nullable=False, server_default=""),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("agent", sa.String(200), nullable=False),
        sa.Column("prompt_sha256", sa.String(64), nullable=False),
        sa.Column("rubric_sha256", sa.String(64), nullable=False),
        sa.Column("code_sha256", sa.String(64), nullable=False),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("rubric", sa.Text, nullable=False),
        sa.Column("examples", sa.Text, nullable=False, server_default="[]"),
        sa.Column("remove_comments", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("key_concepts", sa.Text, nullable=False),
        sa.Column("ai_labels", sa.Text, nullable=False),
        sa.Column("prompt_tokens", sa.Integer, nullable=False),
        sa.Column("completion_tokens", sa.Integer, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("code", sa.Text, nullable=True),
        sa.Column("answer", sa.Text, nullable=True),
    )
    op.create_index("ix_assessment_records_lesson_created", "assessment_records", ["lesson", "created_at"])
    op.create_index("ix_assessment_records_created", "assessment_records", ["created_at"])
    op.create_table(
        "assessment_feedback",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("assessment_id", sa.String(32), nullable=False),
        sa.Column("key_concept", sa.String(500), nullable=False),
        sa.Column("teacher", sa.String(200), nullable=False),
        sa.Column("label", sa.String(32), nullable=True),
        sa.Column("thumbs", sa.String(4), nullable=True),
        sa.Column("comment", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("key_id", sa.String(128), nullable=False),
        sa.UniqueConstraint("assessment_id", "key_concept", "teacher", name="uq_assessment_feedback_one"),
    )
    op.create_index("ix_assessment_feedback_assessment", "assessment_feedback", ["assessment_id"])


def downgrade() -> None:
    op.drop_table("assessment_feedback")
    op.drop_table("assessment_records")
