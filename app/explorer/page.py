"""The GraphiQL page, as ``GET /graphql`` serves it to a browser (``app.access.gate``).

Everything it loads comes from the gateway's origin (``app.explorer.assets``), and its
Content-Security-Policy says so: scripts, styles and connections from ``'self'`` only (plus
``ws:``/``wss:`` to the same host, which ``'self'`` does not cover in every browser), images
and fonts also from ``data:`` (GraphiQL's stylesheet embeds its fonts). There is no inline
script or style: the boot script is a file, and what the gateway wants shown (the demo's
document, a headers template when callers must authenticate) travels in ``data-*``
attributes.
"""

from __future__ import annotations

import html
import re
from string import Template

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send

from app.explorer.assets import PAGE, vendored

#: A Host header that may go into the policy as is (anything else is left out of it).
_HOST = re.compile(r"[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")

#: What the headers editor starts with when every call needs credentials.
AUTH_HEADERS = '{\n  "Authorization": "Bearer "\n}'


def content_security_policy(host: str | None) -> str:
    """The page's policy; ``host`` is the request's Host header."""
    sockets = f" ws://{host} wss://{host}" if host and _HOST.fullmatch(host) else ""
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; "
        f"connect-src 'self'{sockets}; img-src 'self' data:; font-src 'self' data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


class GraphiQLPage:
    """An ASGI app answering with the page. ``default_query`` is the document a first
    visit shows (GraphiQL's own welcome when None); ``auth`` opens the headers editor with
    an ``Authorization`` line to complete."""

    def __init__(self, *, default_query: str | None = None, auth: bool = False) -> None:
        config = {"data-tools": "headers" if auth else None}
        config["data-default-query"] = default_query
        config["data-default-headers"] = AUTH_HEADERS if auth else None
        attributes = " ".join(
            f'{name}="{html.escape(value, quote=True)}"'
            for name, value in config.items()
            if value is not None
        )
        self.template = Template((PAGE / "graphiql.html").read_text(encoding="utf-8"))
        self.values = {
            "config": attributes,
            "react": vendored("react", ".js"),
            "react_dom": vendored("react-dom", ".js"),
            "graphiql_js": vendored("graphiql", ".js"),
            "graphiql_css": vendored("graphiql", ".css"),
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.render(Request(scope, receive))(scope, receive, send)

    def render(self, request: Request) -> Response:
        base = request.scope.get("root_path", "") + "/graphiql"
        body = self.template.substitute(self.values, base=base)
        headers = {
            "content-security-policy": content_security_policy(request.headers.get("host")),
            "cache-control": "no-cache",
            "x-content-type-options": "nosniff",
            "referrer-policy": "no-referrer",
        }
        return HTMLResponse(body, headers=headers)
