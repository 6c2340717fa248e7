"""Configures MLflow's gateway for benchmarks/llmops_gateway.py; runs under MLflow's interpreter.

    <mlflow venv>/bin/python benchmarks/_llmops_mlflow_gateway.py SERVER_URL STUB_BASE_URL

Through MLflow's own REST store (what its UI and client call): one secret (provider openai, the
stub as ``api_base``), one model definition (model ``stub``) and two endpoints on it, ``plain``
(usage tracking off) and ``traced`` (usage tracking on: a trace per request, tokens recorded),
the two configurations the anchor report measured. Requests then go to
``SERVER_URL/gateway/mlflow/v1/chat/completions`` with ``model`` = the endpoint's name.
"""

from __future__ import annotations

import sys


def configure(server_url: str, stub_base: str) -> None:
    from mlflow.entities.gateway_endpoint import (
        GatewayEndpointModelConfig,
        GatewayModelLinkageType,
    )
    from mlflow.store.tracking.rest_store import RestStore
    from mlflow.utils.rest_utils import MlflowHostCreds

    store = RestStore(lambda: MlflowHostCreds(server_url))
    secret = store.create_gateway_secret(
        "stub-key", {"api_key": "unused"}, provider="openai", auth_config={"api_base": stub_base}
    )
    model = store.create_gateway_model_definition("stub", secret.secret_id, "openai", "stub")
    config = GatewayEndpointModelConfig(
        model_definition_id=model.model_definition_id,
        linkage_type=GatewayModelLinkageType.PRIMARY,
        weight=1.0,
    )
    store.create_gateway_endpoint("plain", [config], usage_tracking=False)
    store.create_gateway_endpoint("traced", [config], usage_tracking=True)


if __name__ == "__main__":
    configure(sys.argv[1], sys.argv[2])
