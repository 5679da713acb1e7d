"""Simulations on Dask distributed: the executor the tenant daemon gives its simulated backends.

- :mod:`.executor`: :class:`~.executor.DaskExecutor` (an embedded
  ``LocalCluster`` or a real scheduler), and how it routes, counts and fails
  computations;
- :mod:`.plugin`: the worker plugin loading models once per worker;
- :mod:`.metrics`: counts of the tasks submitted, finished and failed.
"""
