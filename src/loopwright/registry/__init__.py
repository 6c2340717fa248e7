"""The model registry: safe model packages, versions, aliases, stages, approvals, cards, SBOM."""
