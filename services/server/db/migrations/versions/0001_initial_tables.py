"""initial tables

Revision ID: 0001
Revises: 
Create Date: 2026-11-25 05:08:18.455333
"""
from alembic import op
import sqlalchemy as sa
from sqlmodel.sql.sqltypes import AutoString


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    
    op.create_table('capability',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('quantity', AutoString(length=200), nullable=False),
    sa.Column('method', AutoString(length=200), nullable=False),
    sa.Column('input_schema', sa.JSON(), nullable=False),
    sa.Column('output_schema', sa.JSON(), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('updated', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('capability', schema=None) as batch_op:
        batch_op.create_index('ux_capability_quantity_method', ['quantity', 'method'], unique=True)

    op.create_table('event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('time', sa.Float(), nullable=False),
    sa.Column('kind', AutoString(length=40), nullable=False),
    sa.Column('subject', AutoString(length=200), nullable=False),
    sa.Column('from_status', AutoString(length=20), nullable=True),
    sa.Column('to_status', AutoString(length=20), nullable=True),
    sa.Column('actor', AutoString(length=100), nullable=False),
    sa.Column('message', AutoString(), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_event_subject'), ['subject'], unique=False)
        batch_op.create_index(batch_op.f('ix_event_time'), ['time'], unique=False)

    op.create_table('request',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('uuid', AutoString(length=64), nullable=False),
    sa.Column('ctime', sa.Float(), nullable=False),
    sa.Column('updated', sa.Float(), nullable=False),
    sa.Column('status', AutoString(length=20), nullable=False),
    sa.Column('quantity', AutoString(length=200), nullable=False),
    sa.Column('methods', sa.JSON(), nullable=False),
    sa.Column('parameters', sa.JSON(), nullable=False),
    sa.Column('tenant_uuid', AutoString(length=64), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('owner_tenant_uuid', AutoString(length=64), nullable=True),
    sa.Column('last_owner_uuid', AutoString(length=64), nullable=True),
    sa.Column('lease_expires', sa.Float(), nullable=True),
    sa.Column('lease_seconds', sa.Float(), nullable=True),
    sa.Column('lease_expiries', sa.Integer(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('failure_reason', AutoString(), nullable=True),
    sa.Column('parent_uuid', AutoString(length=64), nullable=True),
    sa.Column('campaign', AutoString(length=200), nullable=True),
    sa.Column('provenance', sa.JSON(), nullable=False),
    sa.Column('created_by', AutoString(length=100), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('request', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_request_campaign'), ['campaign'], unique=False)
        batch_op.create_index(batch_op.f('ix_request_created_by'), ['created_by'], unique=False)
        batch_op.create_index('ix_request_lease', ['status', 'lease_expires'], unique=False)
        batch_op.create_index(batch_op.f('ix_request_parent_uuid'), ['parent_uuid'], unique=False)
        batch_op.create_index('ix_request_queue', ['status', 'quantity', sa.literal_column('priority DESC'), 'id'], unique=False)
        batch_op.create_index('ix_request_status_id', ['status', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_request_uuid'), ['uuid'], unique=True)

    op.create_table('result',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('uuid', AutoString(length=64), nullable=False),
    sa.Column('ctime', sa.Float(), nullable=False),
    sa.Column('status', AutoString(length=20), nullable=False),
    sa.Column('request_uuid', AutoString(length=64), nullable=True),
    sa.Column('quantity', AutoString(length=200), nullable=False),
    sa.Column('method', AutoString(length=200), nullable=False),
    sa.Column('parameters', sa.JSON(), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('tenant_uuid', AutoString(length=64), nullable=False),
    sa.Column('idempotency_key', AutoString(length=200), nullable=True),
    sa.Column('posted_by', AutoString(length=100), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('idempotency_key')
    )
    with op.batch_alter_table('result', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_result_quantity'), ['quantity'], unique=False)
        batch_op.create_index(batch_op.f('ix_result_request_uuid'), ['request_uuid'], unique=False)
        batch_op.create_index(batch_op.f('ix_result_uuid'), ['uuid'], unique=True)
        batch_op.create_index('ux_result_one_original', ['request_uuid'], unique=True, sqlite_where=sa.text("status = 'original' AND request_uuid IS NOT NULL"), postgresql_where=sa.text("status = 'original' AND request_uuid IS NOT NULL"))

    op.create_table('server_secret',
    sa.Column('name', AutoString(length=100), nullable=False),
    sa.Column('value', AutoString(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('tenant',
    sa.Column('uuid', AutoString(length=64), nullable=False),
    sa.Column('name', AutoString(length=200), nullable=False),
    sa.Column('contact_person', AutoString(), nullable=False),
    sa.Column('limitations', sa.JSON(), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('stop_requested', sa.Boolean(), nullable=False),
    sa.Column('created', sa.Float(), nullable=False),
    sa.Column('last_seen', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('uuid')
    )
    op.create_table('user',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', AutoString(length=100), nullable=False),
    sa.Column('password_hash', AutoString(), nullable=False),
    sa.Column('role', AutoString(length=20), nullable=False),
    sa.Column('tenant_uuid', AutoString(length=64), nullable=True),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_username'), ['username'], unique=True)

    op.create_table('request_method',
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('method', AutoString(length=200), nullable=False),
    sa.Column('quantity', AutoString(length=200), nullable=False),
    sa.ForeignKeyConstraint(['request_id'], ['request.id'], ),
    sa.PrimaryKeyConstraint('request_id', 'method')
    )
    with op.batch_alter_table('request_method', schema=None) as batch_op:
        batch_op.create_index('ix_request_method_lookup', ['quantity', 'method', 'request_id'], unique=False)

    


def downgrade() -> None:
    
    with op.batch_alter_table('request_method', schema=None) as batch_op:
        batch_op.drop_index('ix_request_method_lookup')

    op.drop_table('request_method')
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_username'))

    op.drop_table('user')
    op.drop_table('tenant')
    op.drop_table('server_secret')
    with op.batch_alter_table('result', schema=None) as batch_op:
        batch_op.drop_index('ux_result_one_original', sqlite_where=sa.text("status = 'original' AND request_uuid IS NOT NULL"), postgresql_where=sa.text("status = 'original' AND request_uuid IS NOT NULL"))
        batch_op.drop_index(batch_op.f('ix_result_uuid'))
        batch_op.drop_index(batch_op.f('ix_result_request_uuid'))
        batch_op.drop_index(batch_op.f('ix_result_quantity'))

    op.drop_table('result')
    with op.batch_alter_table('request', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_request_uuid'))
        batch_op.drop_index('ix_request_status_id')
        batch_op.drop_index('ix_request_queue')
        batch_op.drop_index(batch_op.f('ix_request_parent_uuid'))
        batch_op.drop_index('ix_request_lease')
        batch_op.drop_index(batch_op.f('ix_request_created_by'))
        batch_op.drop_index(batch_op.f('ix_request_campaign'))

    op.drop_table('request')
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_event_time'))
        batch_op.drop_index(batch_op.f('ix_event_subject'))

    op.drop_table('event')
    with op.batch_alter_table('capability', schema=None) as batch_op:
        batch_op.drop_index('ux_capability_quantity_method')

    op.drop_table('capability')
    
