"""Tables of assessment records and teacher feedback (issue 15), on the shared ``metadata``.

Kept apart from ``lib/store/schema.py`` (keys and ledger) so each feature owns its tables; both
register on the same ``MetaData`` so the store tests check every table against the migrated database.
Built by migration ``0002``.

What a record holds and why (README "Assessment records and teacher feedback"): the lesson, model,
agent, the prompt, rubric and few-shot examples (curriculum text, needed to rebuild the exact
messages for fine-tuning and to write a rubric-tester experiment) with their SHA-256 fingerprints,
the AI label per key concept, usage and latency.  The student's program itself is kept only with
``STORE_STUDENT_CODE=1``, and so is the answer's text (its evidence quotes the code); otherwise only
the program's SHA-256 (to check code sent later with feedback).
"""

from __future__ import annotations

import sqlalchemy as sa

from lib.store.schema import metadata

assessment_records = sa.Table(
    "assessment_records",
    metadata,
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
    #: JSON list, rubric order
    sa.Column("key_concepts", sa.Text, nullable=False),
    #: JSON object {key concept: label}
    sa.Column("ai_labels", sa.Text, nullable=False),
    sa.Column("prompt_tokens", sa.Integer, nullable=False),
    sa.Column("completion_tokens", sa.Integer, nullable=False),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("code", sa.Text, nullable=True),
    #: JSON list of the answer rows (Observations, Evidence quoting the code, Label, Reason); like
    #: the code, kept only with STORE_STUDENT_CODE=1 (the fine-tuning target is built from it)
    sa.Column("answer", sa.Text, nullable=True),
    sa.Index("ix_assessment_records_lesson_created", "lesson", "created_at"),
    sa.Index("ix_assessment_records_created", "created_at"),
)

#: One row per (assessment, key concept, teacher): the teacher's label and/or thumbs up/down.
assessment_feedback = sa.Table(
    "assessment_feedback",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("assessment_id", sa.String(32), nullable=False),
    sa.Column("key_concept", sa.String(500), nullable=False),
    sa.Column("teacher", sa.String(200), nullable=False),
    sa.Column("label", sa.String(32), nullable=True),
    sa.Column("thumbs", sa.String(4), nullable=True),
    sa.Column("comment", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("key_id", sa.String(128), nullable=False),
    sa.UniqueConstraint("assessment_id", "key_concept", "teacher", name="uq_assessment_feedback_one"),
    sa.Index("ix_assessment_feedback_assessment", "assessment_id"),
)
