"""Services: store -> frames -> engine -> results, and the side tables they own.

Everything that takes a `LayerStore` and calls an engine of `geoplan.analysis` lives here, so the CLI, the web
app and the reports ask the same functions: the overlap runs (`overlap`: in memory or partitioned on dask;
`overlap_out_of_core` with `overlap_staging`, `overlap_pushdown`) and the planners' marks (`overlap_marks`); the
site check on a store (`compliance`); the coverage inputs and the walking-graph cache (`coverage_inputs`); the
indicator runner and snapshots (`indicators`); rule files (`rule_files`); imports and exports (`ingest`), the
layer inventory (`inventory`), store set-up (`store_setup`), access tokens (`tokens`) and the dask client
(`dask_cluster`).
"""
