"""The tenant runtime: instruments served as FINALES tenants."""
