"""Model packages: the manifest, signatures, flavors, safe loading and the MLflow converter.

Nothing here knows the registry service; the registry stores and versions what this builds.
"""
