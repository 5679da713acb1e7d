"""``labweave demo``: the whole simulated lab in one command, and its report.

- :mod:`.campaigns` makes demo-sized copies of the example campaigns, each with
  a random-search twin as its baseline;
- :mod:`.tenants` provisions the simulated instruments and runs them as tenant
  processes;
- :mod:`.runs` holds what a run is asked for and what it leaves (the types the others share);
- :mod:`.lab` orchestrates a run: database, server, tenants, optimizer daemons;
- :mod:`.progress` shows the live status; :mod:`.summary` the final table;
- :mod:`.analysis` scores each campaign run against its baseline, through
  :mod:`labweave.optimizer.analytics`;
- :mod:`.figures` draws them with matplotlib; :mod:`.report` writes the HTML.

Dependencies point one way: :mod:`.lab` at the top uses :mod:`.replicates`,
:mod:`.progress`, :mod:`.tenants` and :mod:`.campaigns`; :mod:`.report` uses
:mod:`.analysis`, :mod:`.figures` and :mod:`.symbolic`; all of them use
:mod:`.runs`, and none imports :mod:`.lab`.
"""
