"""The feature store: versioned feature definitions, point-in-time training sets on DuckDB,
an online store (SQLite or Redis) and the checks that keep training and serving equal.

Definitions are written with the classes of :mod:`loopwright.features.definitions` (Feast's
concepts: entities, sources, feature views, on-demand feature views, feature services) or in
YAML, and applied with ``loopwright features apply``; ``client.features`` is the rest.
"""
