"""isstreamer.failures against real failures: a closed port, a hung server, a name that does
not resolve, a self-signed certificate, an HTML error page."""

from __future__ import annotations

import http.server
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from apiserver import ApiServer

from isstreamer.failures import (
    Kind,
    classify,
    http_failure,
    is_refused_key,
    receiver_text,
    refused_key_text,
)
from isstreamer.model import Bucket, Outcome
from isstreamer.sinks.initialstate import InitialStateSink

EVENTS = [("k", 1, 1_790_000_000.0)]


def _failure_of(url: str, timeout: float = 5.0) -> BaseException:
    try:
        requests.post(url, data=b"[]", timeout=timeout)
    except requests.RequestException as exc:
        return exc
    raise AssertionError(f"{url} answered")


def _closed_port() -> int:
    with socket.socket() as sock:  # bound, never listening: connecting is refused
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_refused_connection_is_named() -> None:
    """A port with nothing listening is REFUSED, in the sink's message too."""
    url = f"http://127.0.0.1:{_closed_port()}"
    failure = classify(_failure_of(url), url)
    assert failure.kind is Kind.REFUSED and "connection refused" in failure.text
    sink = InitialStateSink(url, "k", timeout=5)
    try:
        result = sink.send(Bucket("b"), EVENTS)
    finally:
        sink.close()
    assert result.outcome is Outcome.RETRY
    assert result.message == f"cannot reach {url}: connection refused"


def test_unresolvable_name_is_dns() -> None:
    """nonexistent.invalid (a reserved name that never resolves) is DNS, not 'refused'."""
    url = "http://nonexistent.invalid"
    failure = classify(_failure_of(url), url)
    assert failure.kind is Kind.DNS, failure
    assert failure.text.startswith(f"cannot reach {url}: its name does not resolve (")


def test_server_that_never_answers_is_timeout(api_server: ApiServer) -> None:
    """A server that reads the request and never answers is TIMEOUT."""
    api_server.hang()
    failure = classify(_failure_of(api_server.url + "/api/events", timeout=0.3), api_server.url)
    assert failure.kind is Kind.TIMEOUT
    assert failure.text == f"no answer from {api_server.url} in time"


@pytest.fixture
def self_signed_server(tmp_path: Path) -> Iterator[str]:
    """An HTTPS server on 127.0.0.1 whose certificate signed itself (made with openssl)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
        + ["-nodes", "-keyout", "k.pem", "-out", "c.pem", "-days", "2", "-subj", "/CN=127.0.0.1"]
        + ["-addext", "subjectAltName=IP:127.0.0.1"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    server.daemon_threads = True
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_self_signed_certificate_is_tls(self_signed_server: str) -> None:
    """A self-signed certificate is TLS, with OpenSSL's reason, not a bare SSLError."""
    failure = classify(_failure_of(self_signed_server), self_signed_server)
    assert failure.kind is Kind.TLS
    assert failure.text == (
        f"cannot reach {self_signed_server}: TLS certificate rejected (self-signed certificate)"
    )


def test_html_error_page_becomes_one_line(api_server: ApiServer) -> None:
    """A 500 with an HTML page is reported as the status and the page's title, on one line."""
    page = (
        "<!DOCTYPE html>\n<html><head>\n<title>Service\n  Unavailable &amp; sad</title></head>"
        "<body><h1>Oops</h1><p>" + "x" * 5000 + "</p></body></html>"
    )
    api_server.fail(500, body=page, headers={"Content-Type": "text/html"}, path="/api/buckets")
    sink = InitialStateSink(api_server.url, "k", timeout=5)
    try:
        result = sink.send(Bucket("b"), EVENTS)
    finally:
        sink.close()
    assert result.status == 500
    assert result.message == "500 Internal Server Error: Service Unavailable & sad"


def test_receiver_text_rules() -> None:
    """Text bodies are flattened and cut; a page without title gives its heading, or nothing."""
    assert receiver_text("  bad\n  value\n") == "bad value"
    assert len(receiver_text("y" * 1000)) == 200
    assert receiver_text("<html><body><h1>Bad <b>gateway</b></h1></body></html>") == "Bad gateway"
    assert receiver_text("<p>no title</p>", "text/html") == ""
    assert http_failure(502, "Bad Gateway", "") == "502 Bad Gateway"
    assert http_failure(502, "Bad Gateway", "bad gateway") == "502 Bad Gateway"
    assert http_failure(503, "Service Unavailable", "busy") == "503 Service Unavailable: busy"


def test_refused_key_is_recognised_in_the_sinks_message(api_server: ApiServer) -> None:
    """The sink's 401 message is what is_refused_key() recognises; 402 (a limit) is not."""
    sink = InitialStateSink(api_server.url, "wrong-key", timeout=5)
    try:
        result = sink.send(Bucket("b"), EVENTS)
    finally:
        sink.close()
    assert result.outcome is Outcome.AUTH and is_refused_key(result.message)
    assert not is_refused_key(str(refused_key_text(402)))
    assert not is_refused_key("cannot reach http://h: connection refused")
