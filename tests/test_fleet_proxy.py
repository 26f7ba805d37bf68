"""The Fleet-only proxy in process (`fedsim.deploy.fleet_proxy`): which raw paths pass, what a forwarded request
and its answer keep, what a refused one gets, and the command's one-line errors. The loopback deployment behind
it is tests/test_flower_deploy_fleet_proxy.py (slow)."""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import socket

import httpx
import pytest
from flwr.supercore.constant import FLEET_HTTP_PUBLIC_KEY_HEADER, FLEET_HTTP_SIGNATURE_HEADER
from flwr.supernode.fleet_http_client import FleetHttpClient

from fedsim.cli.app import main
from fedsim.deploy.credentials import CA_FILE, SERVER_CERT_FILE, SERVER_KEY_FILE, generate
from fedsim.deploy.fleet_proxy import REFUSED, UNREACHABLE, FleetProxy, forwarded, parse_address
from fedsim.errors import UserError

# every path Flower 1.42's SuperNode calls, read from its Fleet client
FLEET_PATHS = re.findall(r'path="(/v1/fleet/[^"]+)"', inspect.getsource(FleetHttpClient))
REFUSED_PATHS = [b"/v1/control/list-runs", b"/v1/control/start-run", b"/v1/control/register-supernode",
                 b"/v1/control/stream-logs", b"/v1/runtime/pull-messages", b"/", b"/v1/fleet/", b"/v1/fleet",
                 b"/v1/fleetx/pull-messages", b"/v1/fleet/../control/list-runs", b"/v1/fleet/./pull-messages",
                 b"/v1/fleet/%2e%2e/control/list-runs", b"/v1/fleet/pull-messages%2f..%2f..%2fcontrol",
                 b"/v1/fleet/a/b", b"//v1/fleet/pull-messages", b"/V1/fleet/pull-messages",
                 b"/v1/fleet/pull-messages/", b"http://127.0.0.1/v1/fleet/pull-messages",
                 b"/v1/fleet/pull-messages\x00", b"/v1/fleet/pull-messages\n"]


def test_only_flower_fleet_endpoints_pass_the_filter():
    assert len(FLEET_PATHS) >= 12 and "/v1/fleet/push-messages" in FLEET_PATHS
    assert all(forwarded(path.encode(), b"") for path in FLEET_PATHS)
    assert not [path for path in REFUSED_PATHS if forwarded(path, b"")]
    assert not forwarded(b"/v1/fleet/pull-messages", b"x=1")


class Upstream:
    """A stand-in SuperLink behind the proxy: records what reaches it and answers 401 with a body and headers."""

    def __init__(self, fail: bool = False) -> None:
        self.seen: list[httpx.Request] = []
        self.fail = fail

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.fail:
            raise httpx.ConnectError("connection refused", request=request)
        request.read()
        self.seen.append(request)
        return httpx.Response(401, content=chunks(b'{"detail": ', b'"Invalid SuperNode authentication"}'),
                              headers=[("content-type", "application/json"), ("x-flower", "a"),
                                       ("x-flower", "b"), ("connection", "close")])


async def chunks(*parts: bytes):
    """A streamed body, as a real transport gives (httpx reads a `bytes` body at once)."""
    for part in parts:
        yield part


def through_proxy(upstream: Upstream, method: str, path: str, **kwargs) -> httpx.Response:
    async def call() -> httpx.Response:
        link = httpx.AsyncClient(base_url="https://127.0.0.1:9092", transport=httpx.MockTransport(upstream))
        proxy = FleetProxy(link)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(proxy), base_url="https://proxy") as client:
            return await client.request(method, path, **kwargs)
    return asyncio.run(call())


def test_a_fleet_request_is_forwarded_with_its_method_headers_and_body_and_its_answer_comes_back():
    upstream = Upstream()
    body = bytes(range(256)) * 1000
    auth = {FLEET_HTTP_PUBLIC_KEY_HEADER: "cHVibGlj", FLEET_HTTP_SIGNATURE_HEADER: "c2lnbmF0dXJl",
            "content-type": "application/protobuf", "connection": "keep-alive, x-hop", "x-hop": "1",
            "proxy-authorization": "Basic eDp5"}
    response = through_proxy(upstream, "POST", "/v1/fleet/push-messages", content=body, headers=auth)
    [seen] = upstream.seen
    assert (seen.method, str(seen.url)) == ("POST", "https://127.0.0.1:9092/v1/fleet/push-messages")
    assert seen.content == body and seen.headers["content-length"] == str(len(body))
    for name in (FLEET_HTTP_PUBLIC_KEY_HEADER, FLEET_HTTP_SIGNATURE_HEADER, "content-type"):
        assert seen.headers[name] == auth[name]
    assert seen.headers["host"] == "127.0.0.1:9092"
    assert not {"x-hop", "proxy-authorization"} & set(seen.headers)
    assert seen.headers["connection"] == "keep-alive"  # the proxy's own connection to the SuperLink
    assert response.status_code == 401 and response.json() == {"detail": "Invalid SuperNode authentication"}
    assert response.headers.get_list("x-flower") == ["a", "b"] and "connection" not in response.headers


def test_anything_else_is_refused_with_one_line_and_logged(caplog):
    upstream = Upstream()
    with caplog.at_level(logging.WARNING, logger="fedsim.fleet_proxy"):
        for method, path in (("POST", "/v1/control/list-runs"), ("POST", "/v1/runtime/push-messages"),
                             ("GET", "/v1/fleet/pull-messages?x=1"), ("GET", "/")):
            response = through_proxy(upstream, method, path, content=b"x")
            assert (response.status_code, response.text) == (404, REFUSED)
            assert f"refused {method} {path!r}" in caplog.text
    assert REFUSED.count("\n") == 1 and upstream.seen == []


def test_the_raw_target_is_checked_not_the_decoded_path():
    """uvicorn decodes `%2e%2e` in `path` but keeps `raw_path` as sent; the SuperLink would route the decoded one."""
    upstream, sent = Upstream(), []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/fleet/../control/list-runs", "query_string": b"",
             "raw_path": b"/v1/fleet/%2e%2e/control/list-runs", "headers": [], "client": ("10.0.0.1", 5)}
    link = httpx.AsyncClient(base_url="https://127.0.0.1:9092", transport=httpx.MockTransport(upstream))
    asyncio.run(FleetProxy(link)(scope, receive, send))
    assert sent[0]["status"] == 404 and upstream.seen == []


def test_an_unreachable_superlink_is_a_502_with_one_line():
    response = through_proxy(Upstream(fail=True), "POST", "/v1/fleet/pull-messages", content=b"x")
    assert (response.status_code, response.text) == (502, UNREACHABLE)


def test_addresses_are_parsed_or_refused_in_one_line():
    assert parse_address("0.0.0.0:9093", "--listen") == ("0.0.0.0", 9093)
    assert parse_address("[::1]:9092", "--superlink") == ("::1", 9092)
    assert parse_address("superlink.example.org:443", "--listen") == ("superlink.example.org", 443)
    for bad in ("9093", ":9093", "host:", "host:0", "host:65536", "host:port", "[::1]"):
        with pytest.raises(UserError, match="--listen must be HOST:PORT"):
            parse_address(bad, "--listen")


def test_command_line_errors_exit_2_in_one_line(tmp_path, capsys):
    creds = generate(tmp_path / "creds", supernodes=1)[0].parent
    other = generate(tmp_path / "other", supernodes=1)[0].parent
    files = ["--cert", str(creds / SERVER_CERT_FILE), "--key", str(creds / SERVER_KEY_FILE),
             "--ca", str(creds / CA_FILE)]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        busy = f"127.0.0.1:{taken.getsockname()[1]}"
        for argv, says in ((["--listen", "9093", *files], "--listen must be HOST:PORT"),
                           (["--listen", "127.0.0.1:9093", "--superlink", "x", *files], "--superlink must be"),
                           (["--listen", "127.0.0.1:9092", *files], "the same address"),
                           (["--listen", busy, *files], f"--listen: cannot listen on {busy}"),
                           (["--listen", "127.0.0.1:9093", *files[:-1], str(tmp_path / "no.pem")], "no.pem"),
                           (["--listen", "127.0.0.1:9093", *files[:-1], str(other / CA_FILE)],
                            "does not verify against CA"),
                           (["--listen", "127.0.0.1:9093", *files[2:]], "--cert")):
            assert main(["deploy", "fleet-proxy", *argv]) == 2, argv
            err = capsys.readouterr().err
            assert err.startswith("fedsim: error: ") and err.count("\n") == 1 and says in err, (argv, err)
