"""The receivers' URL schemes, and which of them still need an access key setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from isstreamer import Streamer
from isstreamer.errors import ConfigError
from isstreamer.schemes import ALL, needs_access_key, prefixes, scheme_of, split_url


@pytest.mark.parametrize(
    ("url", "needed"),
    [
        ("https://groker.init.st", True),
        ("http://127.0.0.1:8080", True),
        ("https://h/api?accessKey=ist_k3y&bucketKey=b", False),
        ("https://h/api?bucketKey=b&accessKey=", True),
        ("https://h/api?accesskey=not-the-name", True),
        ("redis://:pw@h:6379/0", False),
        ("redis+cluster://h:7000,h:7001/", False),
        ("v3io+https://h/container/stream", True),
        ("https://[unclosed/?accessKey=k", True),
    ],
)
def test_needs_access_key(url: str, needed: bool) -> None:
    """Redis URLs and an HTTP api_base holding ?accessKey= need no access_key setting."""
    assert needs_access_key(url) is needed


def test_scheme_of_and_prefixes() -> None:
    """Schemes compare in lower case; every registered scheme has its prefix."""
    assert scheme_of("HTTPS://h") == "https" and scheme_of("no-scheme") == ""
    assert len(prefixes()) == len(ALL) and "redis+cluster://" in prefixes()


def test_streamer_takes_the_key_from_the_api_base(tmp_path: Path) -> None:
    """Streamer() with ?accessKey= in api_base and no access_key starts instead of raising."""
    streamer = Streamer(
        api_base="http://127.0.0.1:9/?accessKey=k",
        bucket_key="b",
        spill_dir=str(tmp_path),
        ini_file_location=None,
    )
    try:
        assert "accessKey" not in repr(streamer)
    finally:
        streamer.close(0.1)
    with pytest.raises(ConfigError, match="no access key"):
        Streamer(api_base="http://127.0.0.1:9/", bucket_key="b", spill_dir=str(tmp_path))


def test_split_url_takes_a_netloc_of_several_hosts() -> None:
    """A cluster URL with an IPv6 node splits on every Python build, credentials included."""
    parts = split_url("rediss+cluster://me:p%40ss@a:7000,[::1]:7001/?ssl_ca_certs=/ca.pem#f")
    assert parts.scheme == "rediss+cluster" and parts.netloc == "me:p%40ss@a:7000,[::1]:7001"
    assert (parts.username, parts.password) == ("me", "p%40ss")
    assert (parts.path, parts.query, parts.fragment) == ("/", "ssl_ca_certs=/ca.pem", "f")


@pytest.mark.parametrize(
    "url", ["https://u:p@h:8443/a/b?x=1", "redis://h", "no-scheme/path", "http://[::1]:80/"]
)
def test_split_url_agrees_with_urlsplit_on_one_host(url: str) -> None:
    """For an ordinary URL split_url is urlsplit."""
    from urllib.parse import urlsplit

    assert split_url(url) == urlsplit(url)


def test_split_url_refuses_an_unclosed_bracket() -> None:
    """A netloc with "[" and no "]" is a ValueError, as from urlsplit."""
    with pytest.raises(ValueError):
        split_url("redis+cluster://a:1,[::1/")
