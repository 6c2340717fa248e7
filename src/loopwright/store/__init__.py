"""Persistence: the SQL metadata store, the content-addressed blob store, migrations."""
