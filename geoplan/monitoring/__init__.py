"""The plan-monitoring model: the project ledger, quarters, as-of replay, indicator definitions and kinds,
snapshots and early warnings.

The indicator kinds are pure functions of frames; the ledger, snapshot and replay modules read the store and
its side tables. The indicator runner that ties them to a store is `geoplan.services.indicators`.
"""
