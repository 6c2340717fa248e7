"""What every dashboard page shares: the template environment, the caller's page context, the
CSRF token, the security headers, and the forms' parsing.

Pages are server-rendered Jinja2 templates (``loopwright/ui/templates``). A page handler takes
the caller like an API handler does (``Viewer``, ``Approver`` from ``server/api/_deps``: the
session cookie authenticates paths under ``/ui``) and answers ``render(request, "x.html",
...)``. A handler that changes state also takes ``Depends(csrf_checked)``; its form carries
``{{ csrf_field() }}`` (or htmx sends the ``X-CSRF-Token`` header the page's body declares).

CSRF: a random token in the ``lw_csrf`` cookie (SameSite=Strict, so another site's request does
not carry it) must come back in the form or header (double submit, with and without auth), and
the browser must say the request came from this origin (``Origin``/``Sec-Fetch-Site``): a sibling
subdomain is the same site and could plant the cookie. The token is renewed at sign-in.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ... import __version__
from ..._humanize import format_duration, format_ms
from ...errors import InvalidInput, PermissionDenied
from ...governance.users import role_at_least
from ..auth import UI_PREFIX

if TYPE_CHECKING:
    from jinja2 import Environment

    from ..auth import Identity

__all__ = [
    "CSRF_COOKIE",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "Page",
    "csrf_checked",
    "dashboard_request",
    "form_fields",
    "fresh_csrf",
    "redirect",
    "render",
    "secure",
    "with_query",
]

CSRF_COOKIE = "lw_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
MAX_FIELDS = 100
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]"})

# No inline script or style anywhere (data travels in <script type="application/json">, which
# is never run); the page may not be framed; forms post only here.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}

# The navigation, in the loop's order: (section, label, path).
NAV = (
    ("home", "Overview", f"{UI_PREFIX}/"),
    ("experiments", "Experiments", f"{UI_PREFIX}/experiments"),
    ("datasets", "Datasets", f"{UI_PREFIX}/datasets"),
    ("models", "Models", f"{UI_PREFIX}/models"),
    ("approvals", "Approvals", f"{UI_PREFIX}/approvals"),
    ("deployments", "Deployments", f"{UI_PREFIX}/deployments"),
    ("monitoring", "Monitoring", f"{UI_PREFIX}/monitoring"),
    ("loops", "Loops", f"{UI_PREFIX}/loops"),
    ("pipelines", "Pipelines", f"{UI_PREFIX}/pipelines"),
    ("prompts", "Prompts", f"{UI_PREFIX}/prompts"),
    ("traces", "Traces", f"{UI_PREFIX}/traces"),
    ("gateway", "Gateway", f"{UI_PREFIX}/gateway"),
    ("evaluations", "Evaluations", f"{UI_PREFIX}/evaluations"),
    ("lineage", "Lineage", f"{UI_PREFIX}/lineage"),
    ("audit", "Audit", f"{UI_PREFIX}/audit"),
)


@dataclass(frozen=True)
class Page:
    """The caller as a template sees it (``page`` in every template)."""

    identity: Identity | None  # None: not signed in (the login page, an error before auth)
    auth: bool  # whether the server checks tokens (a sign-out button then)
    csrf: str
    path: str
    version: str = __version__

    def can(self, role: str) -> bool:
        """Whether the caller holds ``role`` (templates show write buttons by it)."""
        return self.identity is not None and role_at_least(self.identity.role, role)


def _environment() -> Environment:
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=PackageLoader("loopwright.ui", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        ts=format_ms, num=format_number, short=short_id, filesize=format_bytes, ms=format_duration
    )
    env.globals.update(nav=NAV, ui=UI_PREFIX, with_query=with_query)
    return env


_ENV: list[Environment] = []


def templates() -> Environment:
    """The one template environment (made on first use: Jinja2 loads lazily)."""
    if not _ENV:
        _ENV.append(_environment())
    return _ENV[0]


def secure(response: Response) -> Response:
    """``response`` with the dashboard's security headers."""
    response.headers.update(_HEADERS)
    return response


def _csrf_of(request: Request) -> tuple[str, bool]:
    """The request's CSRF token and whether it is new (its cookie must then be set)."""
    known = request.cookies.get(CSRF_COOKIE, "")
    if 20 <= len(known) <= 100 and known.isascii():
        return known, False
    return secrets.token_urlsafe(32), True


def _identity(request: Request) -> Identity | None:
    found = getattr(request.state, "identity", None)
    return found if found is not None and hasattr(found, "role") else None


def page_of(request: Request) -> Page:
    """The page context of ``request`` (the caller as already authenticated, if at all)."""
    csrf, _ = _csrf_of(request)
    request.state.lw_csrf = getattr(request.state, "lw_csrf", None) or csrf
    return Page(
        identity=_identity(request),
        auth=request.app.state.lw.auth_enabled,
        csrf=request.state.lw_csrf,
        path=request.url.path,
    )


def render(request: Request, template: str, *, status: int = 200, **context: Any) -> Response:
    """``template`` rendered with ``context`` and ``page`` (see :class:`Page`), as HTML with the
    security headers; pages are private (``no-store``)."""
    page = page_of(request)
    html = templates().get_template(template).render(page=page, **context)
    response = HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})
    _keep_csrf(request, response)
    return secure(response)


def _keep_csrf(request: Request, response: Response) -> None:
    token = getattr(request.state, "lw_csrf", None)
    if token and request.cookies.get(CSRF_COOKIE) != token:
        response.set_cookie(
            CSRF_COOKIE,
            token,
            path=UI_PREFIX,
            samesite="strict",
            httponly=True,
            secure=request.url.scheme == "https",
        )


def fresh_csrf(request: Request) -> None:
    """Issue a new CSRF token with this response (at sign-in and sign-out): a token planted
    before the session began does not outlive it."""
    request.state.lw_csrf = secrets.token_urlsafe(32)


def redirect(request: Request, url: str) -> Response:
    """A 303 to ``url`` (after a form's POST: the browser then GETs it)."""
    response = RedirectResponse(url, status_code=303)
    _keep_csrf(request, response)
    return secure(response)


async def form_fields(request: Request) -> dict[str, str]:
    """The request's URL-encoded form (the body is already capped by the request guard); a
    field given twice keeps its last value. Read once and kept on the request."""
    cached = getattr(request.state, "lw_form", None)
    if isinstance(cached, dict):
        return cached
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    body = await request.body()
    if body and kind != "application/x-www-form-urlencoded":
        raise InvalidInput(
            f"the dashboard's forms are sent as application/x-www-form-urlencoded, not {kind!r}"
        )
    try:
        text = body.decode("utf-8")
        fields = dict(parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS))
    except UnicodeDecodeError:
        raise InvalidInput("the form is not valid UTF-8") from None
    except ValueError:  # more fields than any dashboard form has
        raise InvalidInput(f"the form has more than {MAX_FIELDS} fields") from None
    request.state.lw_form = fields
    return fields


async def dashboard_request(request: Request) -> None:
    """Checks every dashboard request passes first.

    - Without auth, only a loopback ``Host`` is served: a web page cannot then reach the
      dashboard by pointing its own domain at 127.0.0.1 (DNS rebinding) and act as its admin.
    - A path or query holding a NUL or a lone surrogate is refused: no name or id can hold one
      (the stores refuse them on write), and PostgreSQL refuses them in a query with a driver
      error rather than finding nothing.
    """
    if not request.app.state.lw.auth_enabled:
        host = _host_name(request.headers.get("host", ""))
        if host not in LOOPBACK_HOSTS:
            raise PermissionDenied(
                f"this server has no API tokens, so its dashboard answers only on loopback "
                f"(127.0.0.1, localhost), not as {host!r}; create a token to serve it elsewhere"
            )
    text = request.scope["path"] + unquote(request.scope.get("query_string", b"").decode("latin-1"))
    if "\x00" in text or any("\ud800" <= c <= "\udfff" for c in text):
        raise InvalidInput(
            "the address holds a NUL byte or an unpaired surrogate; no name or id contains one"
        )


def _host_name(host: str) -> str:
    if host.startswith("["):  # [::1]:5005
        return host[: host.find("]") + 1].lower()
    return host.rpartition(":")[0].lower() if ":" in host else host.lower()


async def csrf_checked(request: Request) -> None:
    """Refuse a state-changing dashboard request another site may have sent: one the browser
    says came from elsewhere (``Sec-Fetch-Site``, ``Origin``: a sibling subdomain is same-site,
    not same-origin, and could have set the CSRF cookie itself), or whose CSRF token does not
    match its cookie."""
    fetched_from = request.headers.get("sec-fetch-site")
    origin = request.headers.get("origin")
    # The host alone: behind a proxy ending TLS the app may see http where the browser has https.
    foreign = origin not in (None, "null") and urlsplit(origin).netloc != request.headers.get(
        "host"
    )
    if fetched_from not in (None, "same-origin", "none") or foreign:
        raise PermissionDenied(
            f"the form was sent from another site ({origin or fetched_from}); submit it from "
            "this dashboard's own page"
        )
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = request.headers.get(CSRF_HEADER) or (await form_fields(request)).get(CSRF_FIELD, "")
    if not cookie or not sent or not hmac.compare_digest(cookie.encode(), sent.encode()):
        raise PermissionDenied(
            "the form's CSRF token does not match this browser's session; reload the page and "
            "submit it again"
        )


def with_query(path: str, params: dict[str, Any], **changes: Any) -> str:
    """``path`` with ``params`` updated by ``changes`` as its query (None drops a key): links
    that keep a page's filter and sort while changing one of them."""
    merged = {**params, **changes}
    query = urlencode({k: v for k, v in merged.items() if v is not None and v != ""})
    return f"{path}?{query}" if query else path


def format_number(value: Any, digits: int = 4) -> str:
    """A metric or parameter value, short: 0.8312, 1.2e-05, 12,345."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return str(value)
        if value == int(value) and abs(value) < 1e15:
            return f"{int(value):,}"
        return f"{value:.{digits}g}"
    return str(value)


def short_id(value: str | None, length: int = 8) -> str:
    return "" if value is None else value[:length]


def format_bytes(value: int | None) -> str:
    if value is None:
        return ""
    size = float(value)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"
