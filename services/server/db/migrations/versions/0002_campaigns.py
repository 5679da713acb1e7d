"""campaigns

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 05:24:30.855640
"""
from alembic import op
import sqlalchemy as sa
from sqlmodel.sql.sqltypes import AutoString


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    
    op.create_table('campaign',
    sa.Column('name', AutoString(length=200), nullable=False),
    sa.Column('spec', sa.JSON(), nullable=False),
    sa.Column('status', AutoString(length=20), nullable=False),
    sa.Column('state', sa.JSON(), nullable=False),
    sa.Column('created_by', AutoString(length=100), nullable=False),
    sa.Column('created', sa.Float(), nullable=False),
    sa.Column('updated', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    


def downgrade() -> None:
    
    op.drop_table('campaign')
    
