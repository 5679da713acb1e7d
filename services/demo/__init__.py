"""``labweave demo``: the whole simulated lab in one command, and its report.

- :mod:`.campaigns` makes demo-sized copies of the example campaigns, each with
  a random-search twin as its baseline;
- :mod:`.tenants` provisions the simulated instruments and runs them as tenant
  processes;
- :mod:`.lab` orchestrates a run: database, server, tenants, optimizer daemons;
- :mod:`.progress` shows the live status; :mod:`.summary` the final table;
- :mod:`.analysis` turns campaign states into curves, fronts and scores;
- :mod:`.figures` draws them with matplotlib; :mod:`.report` writes the HTML.
"""
