"""The LLM gateway: OpenAI-compatible routes in front of OpenAI-compatible upstreams.

``GatewayService`` (``client.gateway``) stores routes, encrypted secrets and usage;
``proxy.Gateway`` is the data plane a server runs (``/v1/chat/completions``, ``/v1/completions``,
``/v1/embeddings``, ``/v1/models``); ``guardrails`` holds the checks routes run.
"""

from .entities import GatewayRoute as GatewayRoute
from .entities import GuardrailSpec as GuardrailSpec
from .entities import Limits as Limits
from .entities import Price as Price
from .entities import RouteConfig as RouteConfig
from .entities import SecretInfo as SecretInfo
from .entities import Target as Target
from .entities import UsageRecord as UsageRecord
from .entities import UsageSummary as UsageSummary
from .guardrails import Decision as Decision
from .guardrails import Verdict as Verdict
from .guardrails import register_check as register_check
from .protocol import Gateway as Gateway

__all__ = [
    "Decision",
    "Gateway",
    "GatewayRoute",
    "GuardrailSpec",
    "Limits",
    "Price",
    "RouteConfig",
    "SecretInfo",
    "Target",
    "UsageRecord",
    "UsageSummary",
    "Verdict",
    "register_check",
]
