"""labweave's studies: how its strategies and campaigns compare, measured from a clone.

Not part of the installed package (the wheel packs ``labweave`` only): each study
imports the product, never the other way round, and runs from the root of a clone
with one command, printing its figures as JSON lines:

- ``python -m benchmarks.optimizer``: BO against random search on Hartmann6 and
  Branin (:mod:`benchmarks.problems`), and the time of one proposal.
- ``python -m benchmarks.fidelity``: the MLIP/EMT alloy search replayed on stored
  calculations (``benchmarks/data/``), regret per cost budget.
- ``python -m benchmarks.sisso_octet``: SISSO on octet82 against SISSO++.
- ``python -m benchmarks.pld``: the demo's PLD campaign in process over seeds.
"""
