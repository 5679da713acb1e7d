"""A coin-cell robot: electrolyte formulation (``electrolyte``/``flow``) and cell assembly
(``cell_assembly``/``autobass_assembly``), with a seeded simulated backend.

Import the parts from their modules (``frontend.CoinCellRobot``, ``sim.SimulatedRobotBackend``).
"""
