"""A campaign's data out of the lab: a pandas DataFrame (:mod:`.frame`), files (:mod:`.files`), an RO-Crate
(:mod:`.crate`)."""
