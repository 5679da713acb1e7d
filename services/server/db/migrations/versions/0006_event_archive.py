"""event_archive: where retention moves old events, ids kept

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 01:05:00
"""
import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'event_archive',
        sa.Column('time', sa.Float(), nullable=False),
        sa.Column('kind', AutoString(length=40), nullable=False),
        sa.Column('subject', AutoString(length=200), nullable=False),
        sa.Column('from_status', AutoString(length=20), nullable=True),
        sa.Column('to_status', AutoString(length=20), nullable=True),
        sa.Column('actor', AutoString(length=100), nullable=False),
        sa.Column('message', AutoString(), nullable=False),
        sa.Column('data', sa.JSON(), nullable=False),
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('event_archive') as batch_op:
        batch_op.create_index(batch_op.f('ix_event_archive_subject'), ['subject'], unique=False)
        batch_op.create_index(batch_op.f('ix_event_archive_time'), ['time'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('event_archive') as batch_op:
        batch_op.drop_index(batch_op.f('ix_event_archive_time'))
        batch_op.drop_index(batch_op.f('ix_event_archive_subject'))
    op.drop_table('event_archive')
