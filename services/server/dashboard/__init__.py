"""The lab operator's dashboard, served by the intention server at ``/dashboard``.

Tenants (online or not, what they hold, what they offer within which
limits), the queue (proposals, queued and running requests, results,
failures), each campaign (progress, best so far, the model's view) and the
operator's controls, behind a login with the accounts of the API. See
:mod:`.routes`.
"""
