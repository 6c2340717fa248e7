"""Data versioning: datasets, versions, manifests, profiles, validation."""
