"""Immich as the gateway sees it: its tables and columns, its database, its HTTP API, its version.

Every Immich table, column and route name lives in this package, so one place changes when a
release renames something. What a connected Immich has is discovered at start (`facts`), not set.
"""
