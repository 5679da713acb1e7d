"""Tables, engine and migrations of the intention server."""
