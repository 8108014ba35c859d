"""Tests of geoplan.monitoring: the project ledger, indicators, snapshots."""
