"""Instruments run by a tomato daemon (tomato 2.x, the ConCat lab's instrument automation): the daemon's
client (:mod:`.daemon`), payloads (:mod:`.payload`), device limits (:mod:`.limits`), job data
(:mod:`.data`), the backend (:mod:`.backend`) and the generic device frontend (:mod:`.frontend`)."""
