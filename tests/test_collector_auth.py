"""The collector's access rules as plain functions: key check, loopback Hosts, keyless reads."""

from __future__ import annotations

import pytest

from isstreamer.collector.auth import (
    given_key,
    key_accepted,
    loopback_address,
    loopback_host,
    reads_need_key,
)


def test_given_key_prefers_the_header_to_the_query() -> None:
    """X-IS-AccessKey wins over ?accessKey=; neither gives ""."""
    query = [("accessKey", "from-query")]
    assert given_key({"x-is-accesskey": "from-header"}, query) == "from-header"
    assert given_key({}, query) == "from-query"
    assert given_key({}, []) == ""


def test_key_accepted_checks_every_key_and_survives_odd_bytes() -> None:
    """Any of several keys is accepted; a near miss, "" and a lone surrogate are not."""
    keys = ["alpha-key", "beta-key"]
    assert key_accepted("beta-key", keys) and key_accepted("alpha-key", keys)
    assert not key_accepted("beta-ke", keys) and not key_accepted("", keys)
    assert not key_accepted("caf\udcff", keys)
    assert not key_accepted("anything", [])


@pytest.mark.parametrize(
    "host, loopback",
    [
        ("localhost", True),
        ("LOCALHOST:8080", True),
        ("dash.localhost", True),
        ("127.0.0.1:8080", True),
        ("127.8.9.10", True),
        ("[::1]:8080", True),
        ("[::1]", True),
        ("10.0.0.7:8080", False),
        ("evil.example", False),
        ("localhost.evil.example", False),
        ("", False),
    ],
)
def test_loopback_host(host: str, loopback: bool) -> None:
    """Host headers naming this machine, with or without a port, and nothing else."""
    assert loopback_host(host) is loopback


def test_loopback_address_for_binding() -> None:
    """Loopback IPs (a zone suffix too) open reads; names and other addresses do not."""
    assert loopback_address("127.0.0.1") and loopback_address("::1%lo")
    assert not loopback_address("0.0.0.0") and not loopback_address("localhost")


def test_reads_need_key_unless_open_and_loopback() -> None:
    """A read needs the key when the collector is exposed or the Host header is foreign."""
    assert not reads_need_key(True, "localhost:8080")
    assert reads_need_key(True, "evil.example") and reads_need_key(True, None)
    assert reads_need_key(False, "localhost:8080")
