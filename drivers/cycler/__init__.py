"""A battery cycler: the ``capacity``/``cycling`` frontend, a PyBaMM-based simulated backend, analysis.

Import the parts from their modules (``frontend.Cycler``, ``sim.SimulatedCyclerBackend``,
``analysis``); importing this package does not import PyBaMM.
"""
