"""auth: users' token generation (revocation) and the login_failure table (login throttling)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 23:41:37.728422
"""
from alembic import op
import sqlalchemy as sa
from sqlmodel.sql.sqltypes import AutoString


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('login_failure',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', AutoString(length=200), nullable=False),
    sa.Column('time', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('login_failure', schema=None) as batch_op:
        batch_op.create_index('ix_login_failure_key_time', ['key', 'time'], unique=False)
        batch_op.create_index(batch_op.f('ix_login_failure_time'), ['time'], unique=False)

    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('token_generation', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('password_changed', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_column('password_changed')
        batch_op.drop_column('token_generation')

    with op.batch_alter_table('login_failure', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_login_failure_time'))
        batch_op.drop_index('ix_login_failure_key_time')

    op.drop_table('login_failure')
