"""overnight operation: request wire JSON, lease heartbeat counter, lab pause state

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 04:30:00
"""
import json
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def _wire(r) -> str:
    """As ``convert.request_wire`` writes it (repeated here: a migration stays as it was written)."""
    ctime = datetime.fromtimestamp(r.ctime, tz=timezone.utc).isoformat()
    body = {'quantity': r.quantity, 'methods': r.methods, 'parameters': r.parameters, 'tenant_uuid': r.tenant_uuid}
    return json.dumps({'uuid': r.uuid, 'ctime': ctime, 'request': body}, separators=(',', ':'),
                      ensure_ascii=False, allow_nan=False)


def upgrade() -> None:
    with op.batch_alter_table('request') as batch_op:
        batch_op.add_column(sa.Column('wire', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('lease_beat', sa.Integer(), server_default='0', nullable=False))
    # The wire text of the requests already stored: written here as the server writes it at creation.
    conn = op.get_bind()
    request = sa.table('request', sa.column('id', sa.Integer()), sa.column('uuid', sa.String()),
                       sa.column('ctime', sa.Float()), sa.column('quantity', sa.String()),
                       sa.column('methods', sa.JSON()), sa.column('parameters', sa.JSON()),
                       sa.column('tenant_uuid', sa.String()), sa.column('wire', sa.Text()))
    rows = conn.execute(sa.select(request.c.id, request.c.uuid, request.c.ctime, request.c.quantity, request.c.methods, request.c.parameters,
                                  request.c.tenant_uuid)).all()
    if rows:
        conn.execute(sa.update(request).where(request.c.id == sa.bindparam('b_id'))
                     .values(wire=sa.bindparam('b_wire')),
                     [{'b_id': r.id, 'b_wire': _wire(r)} for r in rows])
    lab_state = op.create_table(
        'lab_state',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('paused', sa.Boolean(), nullable=False),
        sa.Column('release_running', sa.Boolean(), nullable=False),
        sa.Column('reason', AutoString(), nullable=False),
        sa.Column('changed_by', AutoString(length=100), nullable=False),
        sa.Column('changed', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.bulk_insert(lab_state, [{'id': 1, 'paused': False, 'release_running': False, 'reason': '',
                                'changed_by': '', 'changed': 0.0}])


def downgrade() -> None:
    op.drop_table('lab_state')
    with op.batch_alter_table('request') as batch_op:
        batch_op.drop_column('lease_beat')
        batch_op.drop_column('wire')
