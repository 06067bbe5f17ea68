"""Sites grouped by registrable domain, from the public suffix list bundled with tldextract."""

from __future__ import annotations

import pyarrow as pa
import pytest

from advertisex.enrich.domains import Domains


@pytest.mark.parametrize(
    ("host", "domain"),
    [
        ("www.example.co.uk", "example.co.uk"),
        ("m.example.co.uk", "example.co.uk"),
        ("news.bbc.co.uk", "bbc.co.uk"),
        ("example.com", "example.com"),
        ("a.b.example.com.au", "example.com.au"),
        ("foo.blogspot.com", "foo.blogspot.com"),  # a private suffix: each blog is a site
        ("com.rovio.angrybirds", "com.rovio.angrybirds"),  # an app bundle, kept
        ("192.0.2.1", "192.0.2.1"),
        ("localhost", "localhost"),
    ],
)
def test_registrable_domain(host: str, domain: str) -> None:
    assert Domains().registrable(host) == domain


def test_no_network_fetch(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    def refuse(*_a: object, **_k: object) -> None:
        raise AssertionError("tldextract tried the network")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    table = Domains().lookup(pa.array(["www.shop.example.org", "m.shop.example.org"]))
    assert table.column("domain").to_pylist() == ["example.org", "example.org"]


def test_public_names() -> None:
    import advertisex.enrich

    assert advertisex.enrich.__all__ == [
        "DEVICE_TYPES",
        "Domains",
        "GeoIP",
        "IvtReason",
        "UserAgents",
        "enrichment_summary",
        "load_creatives",
    ]
    assert set(advertisex.enrich.DEVICE_TYPES) == {
        "desktop", "mobile", "tablet", "ctv", "bot", "other"
    }  # fmt: skip
