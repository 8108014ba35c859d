"""Pure analysis engines: frames in, frames out, keyword-only, never mutating, metres in EPSG:4547.

Nothing here opens a store, reads settings or a file, or knows the web: `geoplan.services` reads the store and
calls these; an import contract in CI (`lint-imports`) keeps it so.

多规合一 conflict patches: `rules` (the rule table, parsed), `overlap` (the engine), `overlap_partitioned` (the
same engine in spatial partitions on dask), `slivers` (the one sliver rule), `areas` (reprojection, planar and
ellipsoidal areas), `summary` (tables by rule and by town). The site compliance check (合规性审查): `compliance`
and `compliance_site`. Coverage: `network`, `coverage`, `coverage_config`, `coverage_partitioned`, `reach`,
`service_areas`, `siting`, `capacity`.
"""
