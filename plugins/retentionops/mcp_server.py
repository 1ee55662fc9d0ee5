"""The MCP server's doors to the outside: ``retentionops mcp`` (stdio or streamable HTTP), the
HTTP transport's bearer token and loopback rule, and :func:`build_server`.

The server itself -- one module-level ``MCPServer``, its typed lifespan context and one tool
per operation -- is ``retentionops.mcp_tools`` (docs/mcp.md). This module is imported by the
CLI for its options and the package's version, so it imports neither the ``mcp`` SDK nor
the tools until it serves.

Run it with ``retentionops mcp`` (stdio by default, ``--transport http`` for streamable HTTP
on 127.0.0.1:8766) or ``python -m retentionops.mcp_server``. Nothing is opened at import time.
"""

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from retentionops.connections import is_loopback

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

    from retentionops.mcp_tools import AppContext
    from retentionops.settings import Settings

DEFAULT_TRANSPORT = "stdio"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8766
HTTP_PATH = "/mcp"

log = logging.getLogger("retentionops.mcp")


def build_server(settings: "Settings | None" = None) -> "MCPServer[AppContext]":
    """The module-level MCP server (``retentionops.mcp_tools.mcp``), serving ``settings``
    (default: loaded now) from its next start."""
    from retentionops import mcp_tools
    from retentionops.settings import load_settings

    return mcp_tools.configure(settings if settings is not None else load_settings())


# -- command line (wired by ``retentionops mcp``) -----------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``retentionops mcp``."""
    parser.add_argument(
        "--transport",
        choices=("stdio", "http"),
        default=DEFAULT_TRANSPORT,
        help="stdio for a local MCP client (default), http for streamable HTTP",
    )
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help=f"HTTP address (default {DEFAULT_HOST})"
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"HTTP port (default {DEFAULT_PORT})"
    )


def _configure_logging() -> None:
    """Everything to stderr: on stdio, stdout is the protocol channel."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.INFO)


def bearer_token(token: str | None) -> str:
    """The configured token, or "" for none: a blank or whitespace-only value is no token
    (it would otherwise "protect" a server with a password anyone can guess)."""
    return (token or "").strip()


def authorized(header: bytes, token: bytes) -> bool:
    """Whether an ``Authorization`` header carries the token: the scheme ``Bearer`` in any
    case (RFC 7235: auth schemes are case-insensitive), then the token, compared in
    constant time."""
    import hmac

    scheme, _, credentials = header.strip().partition(b" ")
    return (
        bool(token)
        and scheme.lower() == b"bearer"
        and hmac.compare_digest(credentials.strip(), token)
    )


class BearerAuth:
    """ASGI middleware: every HTTP request needs ``Authorization: Bearer <token>``."""

    def __init__(self, app: Any, token: str) -> None:
        self.app, self._token = app, bearer_token(token).encode()
        if not self._token:
            raise ValueError("BearerAuth needs a non-blank token")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            given = headers.get(b"authorization", b"")
            if not authorized(given, self._token):
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"www-authenticate", b'Bearer realm="retentionops"'),
                        ],
                    }
                )
                body = b'{"error": "unauthorized: send Authorization: Bearer <token>"}'
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def http_app(server: "MCPServer[Any]", host: str, token: str) -> Any:
    """The streamable HTTP app, behind the bearer token when one is configured.

    Without a token it serves on a loopback address only: anything else could reach the
    tools (which write files and post to Slack) without authentication. A blank token is no
    token (logged, so a token set to spaces by mistake is noticed).
    """
    from retentionops.errors import UserError

    if token and not bearer_token(token):
        log.warning("mcp_http_token is blank (whitespace only): treated as no token")
    token = bearer_token(token)
    if not token and not is_loopback(host):
        raise UserError(
            f"refusing to serve MCP over HTTP on {host} without a bearer token: set "
            "RETENTIONOPS_MCP_HTTP_TOKEN (or mcp_http_token), or serve on 127.0.0.1"
        )
    app = server.streamable_http_app(streamable_http_path=HTTP_PATH, host=host)
    return BearerAuth(app, token) if token else app


async def _serve_http(server: "MCPServer[Any]", host: str, port: int, token: str) -> None:
    """Streamable HTTP at ``http://HOST:PORT/mcp``; uvicorn's logs go to stderr too."""
    import uvicorn

    app = http_app(server, host, token)
    config = uvicorn.Config(app, host=host, port=port, log_config=None, log_level="info")
    log.info("RetentionOps MCP server on http://%s:%s%s (streamable HTTP)", host, port, HTTP_PATH)
    await uvicorn.Server(config).serve()


def run_from_args(args: argparse.Namespace) -> int:
    """Serve until the client disconnects (stdio) or SIGINT (http); 2 on a settings error."""
    import anyio

    from retentionops.connections import stdout_is_data
    from retentionops.errors import UserError
    from retentionops.settings import check_warehouse_path, load_settings

    _configure_logging()
    stdout_is_data()  # on stdio, stdout is the protocol: no log line may land there
    try:
        settings = load_settings(getattr(args, "config", None))
        check_warehouse_path(settings)  # refused now, not at the first tool call
        server = build_server(settings)
        if getattr(args, "transport", DEFAULT_TRANSPORT) == "http":
            host = getattr(args, "host", DEFAULT_HOST)
            http_app(server, host, settings.mcp_http_token)  # refuse before binding
            anyio.run(
                _serve_http,
                server,
                host,
                getattr(args, "port", DEFAULT_PORT),
                settings.mcp_http_token,
            )
        else:
            log.info("RetentionOps MCP server on stdio")
            server.run("stdio")
    except UserError as error:
        print(f"retentionops mcp: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


def build_parser(prog: str = "retentionops-mcp") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="RetentionOps MCP server.")
    parser.add_argument("--config", metavar="FILE", help="settings YAML")
    add_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run_from_args(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
