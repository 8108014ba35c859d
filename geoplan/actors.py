"""Who did something: the one limit every table that records an actor (marks, ledger, snapshots) shares."""

from __future__ import annotations

MAX_ACTOR = 100
"""The longest actor name (a user's or a token's label) stored with a mark, a progress record or a snapshot."""
