"""Atomistic simulation: bulk properties by EMT (the expensive reference) and CHGNet (the cheap MLIP)."""
