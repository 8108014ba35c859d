"""Analyses over the store's layers: pure functions from GeoDataFrames to GeoDataFrames and tables.

多规合一 conflict patches: `rules` (the rule table as data), `overlap` (the engine), `slivers` (the one sliver
rule), `areas` (reprojection, planar and ellipsoidal areas), `summary` (tables by rule and by town), `marks`
(planners' resolution marks) and `conflicts_service` (store -> engine -> marks, for the CLI and the web API).
The site compliance check (合规性审查) lives in the `compliance*` modules and reuses the rule table.
"""
