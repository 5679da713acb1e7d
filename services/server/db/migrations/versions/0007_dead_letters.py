"""dead_letter: results tenants keep because the server refused them, as last reported

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 04:40:00
"""
import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'dead_letter',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_uuid', AutoString(length=64), nullable=False),
        sa.Column('key', AutoString(length=300), nullable=False),
        sa.Column('request_uuid', AutoString(length=64), nullable=True),
        sa.Column('quantity', AutoString(length=200), nullable=False),
        sa.Column('method', AutoString(length=200), nullable=False),
        sa.Column('refusal', AutoString(), nullable=False),
        sa.Column('status_code', sa.Integer(), nullable=True),
        sa.Column('kept_at', sa.Float(), nullable=False),
        sa.Column('reported_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('dead_letter') as batch_op:
        batch_op.create_index('ux_dead_letter_tenant_key', ['tenant_uuid', 'key'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('dead_letter') as batch_op:
        batch_op.drop_index('ux_dead_letter_tenant_key')
    op.drop_table('dead_letter')
