"""How much of an access key may be shown: never more than a recognisable fragment."""

from __future__ import annotations

import pytest

from isstreamer.redact import redact_key, redact_url, scrub


def test_long_key_shows_first_and_last_four() -> None:
    """A key of 16 characters or more shows its first four and last four, e.g. ist_…a1b2."""
    assert redact_key("ist_0123456789abcdefa1b2") == "ist_…a1b2"
    assert redact_key("abcdefghijklmnop") == "abcd…mnop"


def test_medium_key_shows_last_two() -> None:
    """A key of 8 to 15 characters shows only its last two."""
    assert redact_key("abcdefgh") == "…gh"
    assert redact_key("test-access-key") == "…ey"


@pytest.mark.parametrize("key", ["a", "abc", "abcdefg"])
def test_short_key_shows_nothing(key: str) -> None:
    """A key under 8 characters shows none of them."""
    assert redact_key(key) == "…"


@pytest.mark.parametrize("key", ["", None])
def test_empty_key(key: str) -> None:
    """No key at all is shown as (none)."""
    assert redact_key(key) == "(none)"


@pytest.mark.parametrize("length", [1, 7, 8, 15, 16, 24, 32, 64, 200])
def test_never_reveals_the_key(length: int) -> None:
    """The redacted form never contains the key; it shows at most half of it, at most 8 chars."""
    key = "".join(chr(ord("a") + i % 26) for i in range(length))
    shown = redact_key(key)
    assert key not in shown or length == 0
    visible = len(shown.replace("…", ""))
    assert visible <= min(8, length // 2)


KEY = "ist_0123456789abcdefSECRETa1b2"


@pytest.mark.parametrize(
    "url, expected",
    [
        ("https://groker.init.st", "https://groker.init.st"),
        (
            f"https://h/api/events?accessKey={KEY}&bucketKey=b1",
            "https://h/api/events?accessKey=ist_…a1b2&bucketKey=b1",
        ),
        (f"https://me:{KEY}@h:8443/p", "https://me:…@h:8443/p"),
        (f"https://{KEY}@h/", "https://ist_…a1b2@h/"),
        (f"redis://:{KEY}@127.0.0.1:6379/0?db=2", "redis://:…@127.0.0.1:6379/0?db=2"),
        ("https://h/?token=abcdefghijkl&x=", "https://h/?token=…kl&x="),
        ("https://h/#frag", "https://h/"),
        (f"redis+cluster://:{KEY}@a:7000,[::1]:7001/", "redis+cluster://:…@a:7000,[::1]:7001/"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    """Passwords and query values (but bucketKey, db and a few other names) are redacted."""
    assert redact_url(url) == expected
    assert "SECRET" not in redact_url(url)


def test_redact_url_unparsable() -> None:
    """A URL urlsplit refuses is not shown at all: it may still hold a secret."""
    assert redact_url(f"https://[{KEY}/") == "(unparsable URL)"


def test_scrub_replaces_every_occurrence() -> None:
    """scrub() replaces each full secret with its redacted form and ignores empty ones."""
    text = f"echo: {KEY} and again {KEY}"
    assert scrub(text, KEY, "") == "echo: ist_…a1b2 and again ist_…a1b2"
    assert scrub("nothing here", KEY) == "nothing here"
    assert scrub("x", "") == "x"


def test_redis_addresses_carry_no_credentials() -> None:
    """The Redis sinks' and the relay's addresses are normalised and hold no password or query."""
    from isstreamer.relay_source import source_address
    from isstreamer.sinks.redis import redis_address
    from isstreamer.sinks.redis_cluster import cluster_address

    assert redis_address(f"rediss://me:{KEY}@h/3?prefix=p") == "rediss://h:6379/3"
    assert (
        cluster_address(f"redis+cluster://:{KEY}@a:7000,[::1]/")
        == "redis+cluster://a:7000,[::1]:6379/"
    )
    assert source_address(f"redis://:{KEY}@h:1/0") == "redis://h:1/0"
    assert source_address(f"redis+cluster://:{KEY}@a:7000/") == "redis+cluster://a:7000/"


def test_refused_redis_url_is_shown_redacted() -> None:
    """A URL the relay refuses is named with its password redacted by the one redactor."""
    from isstreamer.errors import ConfigError
    from isstreamer.relay_source import connect

    pytest.importorskip("redis")
    with pytest.raises(ConfigError) as caught:
        connect(f"https://me:{KEY}@h/?token={KEY}", block_ms=1)
    assert "SECRET" not in str(caught.value) and "me:…@h" in str(caught.value)
