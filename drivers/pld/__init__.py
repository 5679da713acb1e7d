"""Pulsed-laser-deposition chamber: frontend, simulated backend and growth model."""
