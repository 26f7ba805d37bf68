"""A Fleet-only TLS reverse proxy in front of a Flower 1.42 SuperLink (`fedsim deploy fleet-proxy`).

Why: one SuperLink port serves the Fleet API (`/v1/fleet/`, SuperNodes), the Control API (`/v1/control/`:
`flwr run`, `flwr stop`, `flwr supernode register`, logs) and the Runtime API (`/v1/runtime/`), and the
open-source SuperLink authenticates nobody on the Control API. So the label party binds the SuperLink to
127.0.0.1 and exposes this proxy on the public address instead: it terminates TLS with the SuperLink's own
certificate (SuperNodes verify it with the same `ca.pem`), forwards a request only if its raw path is one
Fleet endpoint (`/v1/fleet/NAME`, NAME of letters, digits and dashes, no query), and answers anything else
404 with one line, logging the refused method, path and peer. A forwarded request keeps its method, headers
(the SuperNode's signature headers included; hop-by-hop ones dropped) and body, streamed both ways, and goes
to the SuperLink over TLS verified with the CA. SuperNode authentication itself stays the SuperLink's job.

The filter works on the raw request target, never a decoded or normalised one: `..`, `.`, `%2e`, `%2f`,
an absolute-form target or a second path segment cannot pass, so the forwarded URL is exactly the checked one.
"""

from __future__ import annotations

import logging
import re
import socket
import ssl
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import httpx
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import PlainTextResponse, StreamingResponse

from fedsim.errors import UserError, check

log = logging.getLogger("fedsim.fleet_proxy")
FLEET_PATH = re.compile(rb"/v1/fleet/[A-Za-z0-9-]+")
REFUSED = "fedsim fleet-proxy: only the Flower Fleet API (/v1/fleet/) is served here\n"
UNREACHABLE = "fedsim fleet-proxy: the SuperLink behind this proxy did not answer\n"
# RFC 9110 7.6.1 connection-specific fields, and Host (httpx sets the SuperLink's)
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
                        "te", "trailer", "transfer-encoding", "upgrade", "host"})

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def forwarded(raw_path: bytes, query: bytes) -> bool:
    """Whether a request with this raw path and query string reaches the SuperLink: one Fleet endpoint, no query."""
    return FLEET_PATH.fullmatch(raw_path) is not None and not query


def end_to_end(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """`headers` without the hop-by-hop ones (and those a `Connection` header names)."""
    named = {token.strip().lower() for name, value in headers if name.lower() == b"connection"
             for token in value.decode("latin-1").split(",")}
    return [(name, value) for name, value in headers
            if (lower := name.decode("latin-1").lower()) not in HOP_BY_HOP and lower not in named]


class FleetProxy:
    """The ASGI application: forward Fleet requests to `client` (an `httpx.AsyncClient` whose `base_url` is the
    SuperLink), refuse everything else."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        assert scope["type"] == "http", scope["type"]  # uvicorn runs with ws="none": no websocket scopes
        raw_path = scope.get("raw_path") or scope["path"].encode()
        peer = ":".join(map(str, scope["client"])) if scope.get("client") else "unknown peer"
        if not forwarded(raw_path, scope.get("query_string", b"")):
            target = raw_path + (b"?" + scope["query_string"] if scope.get("query_string") else b"")
            log.warning("refused %s %r from %s", scope["method"], target.decode("latin-1"), peer)
            await PlainTextResponse(REFUSED, status_code=404)(scope, receive, send)
            return
        request = Request(scope, receive)
        upstream = self.client.build_request(scope["method"], raw_path.decode("ascii"),
                                             headers=end_to_end(list(scope["headers"])), content=request.stream())
        try:
            response = await self.client.send(upstream, stream=True)
        except httpx.HTTPError as exc:
            log.error("the SuperLink did not answer %s %s from %s: %s", scope["method"], raw_path.decode(), peer,
                      type(exc).__name__)
            await PlainTextResponse(UNREACHABLE, status_code=502)(scope, receive, send)
            return
        reply = StreamingResponse(response.aiter_raw(), status_code=response.status_code,
                                  background=BackgroundTask(response.aclose))
        reply.raw_headers = end_to_end([(name.encode("latin-1"), value.encode("latin-1"))
                                        for name, value in response.headers.multi_items()])
        await reply(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        """Start at once; close the connections to the SuperLink on shutdown."""
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await self.client.aclose()
        await send({"type": "lifespan.shutdown.complete"})


def parse_address(text: str, flag: str) -> tuple[str, int]:
    """HOST:PORT (an IPv6 host in brackets) -> (host, port), or a one-line UserError naming `flag`."""
    host, sep, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    check(bool(sep and host and port.isdigit() and 0 < int(port) < 65536),
          f"{flag} must be HOST:PORT with a port in 1..65535 ([::1]:PORT for IPv6), got {text!r}")
    return host, int(port)


def listen_socket(host: str, port: int) -> socket.socket:
    """The bound, listening public socket (bound here so a taken port is a one-line error, not a uvicorn trace)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise UserError(f"--listen: cannot use {host}:{port}: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise UserError(f"--listen: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def serve(listen: str, superlink: str, cert: str, key: str, ca: str) -> None:
    """Run the proxy until interrupted: TLS with `cert`/`key` on `listen`, forwarding to https://`superlink`
    verified with `ca`. Checks its inputs first (one-line UserError)."""
    import uvicorn  # the server only when it runs

    listen_host, listen_port = parse_address(listen, "--listen")
    link_host, link_port = parse_address(superlink, "--superlink")
    check((listen_host, listen_port) != (link_host, link_port),
          f"--listen and --superlink are the same address ({listen}): bind the SuperLink to 127.0.0.1 and "
          "another port")
    verify = ssl.create_default_context(cafile=ca)
    netloc = f"[{link_host}]:{link_port}" if ":" in link_host else f"{link_host}:{link_port}"
    client = httpx.AsyncClient(base_url=f"https://{netloc}", verify=verify,
                               timeout=httpx.Timeout(30.0, read=None))  # a SuperNode sets its own read timeouts
    sock = listen_socket(listen_host, listen_port)
    config = uvicorn.Config(FleetProxy(client), ssl_certfile=cert, ssl_keyfile=key, lifespan="on", ws="none",
                            log_level="warning", access_log=False, proxy_headers=False, server_header=False)
    log.info("fedsim fleet-proxy: serving /v1/fleet/ on %s, forwarding to https://%s", listen, netloc)
    uvicorn.Server(config).run(sockets=[sock])
