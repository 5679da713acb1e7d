"""tenant.granted: the operator's envelope of a tenant's limitations

Existing tenants keep what they offer today as their envelope.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 00:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tenant') as batch:
        batch.add_column(sa.Column('granted', sa.JSON(), nullable=True))
    op.execute("UPDATE tenant SET granted = limitations")


def downgrade() -> None:
    with op.batch_alter_table('tenant') as batch:
        batch.drop_column('granted')
