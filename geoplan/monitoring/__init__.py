"""Monitoring the action plan quarter by quarter: the project ledger (`ledger`), indicators and snapshots.

Everything here reads the store through the `LayerStore` interface or the store's own database (SQLAlchemy),
and the analysis functions are pure: frames in, frames out.
"""
