"""readiness probe: a row per replica that /healthz/ready rewrites

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 23:50:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'readiness_probe',
        sa.Column('replica', sa.String(length=200), nullable=False),
        sa.Column('checked', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('replica'),
    )


def downgrade() -> None:
    op.drop_table('readiness_probe')
