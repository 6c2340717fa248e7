"""Pipelines: plain Python steps composed by calling them, cached across runs, resumable.

Steps are functions decorated with ``@step``; a ``@pipeline`` function calls them. Each pipeline
run is a tracked run and each step call a nested run whose outputs are stored as artifacts by
type (materializers), so a later run with the same code, parameters and inputs reuses them.
"""
