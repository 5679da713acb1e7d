"""Everything the server holds about one campaign, fetched once and turned into a frame or a crate."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from labweave.schemas.api import CampaignRecord, RequestDetail
from labweave.schemas.core import ResultInfo
from labweave.schemas.tenant import TenantInfo

from .frame import campaign_frame


@dataclass
class CampaignData:
    """A campaign's record, requests, results, and the tenants of the lab (to name who ran what).

    Attributes:
        record: the campaign's record (spec, status, the daemon's state).
        requests: its requests.
        results: their results.
        tenants: the lab's tenants.
    """

    record: CampaignRecord
    requests: list[RequestDetail]
    results: list[ResultInfo]
    tenants: list[TenantInfo] = field(default_factory=list)

    @property
    def tenant_names(self) -> dict[str, str]:
        return {t.tenant_uuid: t.name for t in self.tenants}

    def frame(self) -> pd.DataFrame:
        """The campaign as a DataFrame (:func:`~.frame.campaign_frame`)."""
        return campaign_frame(self.record, self.requests, self.results, self.tenant_names)
