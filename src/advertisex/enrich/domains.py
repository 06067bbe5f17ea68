"""Sites as registrable domains (public suffix list bundled with tldextract, never fetched)."""

from __future__ import annotations

import pyarrow as pa
import tldextract

SITE_SCHEMA = pa.schema([("site", pa.string()), ("domain", pa.string())])
# App bundles ("com.example.game") look like host names read backwards: kept as they are.
_BUNDLE_HEADS = frozenset({"com", "net", "org", "tv", "io", "air", "au", "br", "de", "jp", "uk"})


class Domains:
    """Host name -> registrable domain: www.example.co.uk and m.example.co.uk -> example.co.uk.

    Private suffixes count (foo.blogspot.com is its own site). IPs, single labels and app
    bundles are kept as they are.
    """

    def __init__(self) -> None:
        # suffix_list_urls=() and no cache dir: the snapshot inside the package, no network.
        self._extract = tldextract.TLDExtract(
            suffix_list_urls=(), cache_dir=None, include_psl_private_domains=True
        )
        self._cache: dict[str, str] = {}

    def registrable(self, host: str) -> str:
        hit = self._cache.get(host)
        if hit is None:
            if len(self._cache) > 200_000:
                self._cache.clear()
            hit = self._cache[host] = self._registrable(host)
        return hit

    def _registrable(self, host: str) -> str:
        labels = host.split(".")
        if len(labels) >= 3 and labels[0] in _BUNDLE_HEADS:
            return host
        found = self._extract(host)
        return found.top_domain_under_public_suffix or host

    def lookup(self, sites: pa.Array | pa.ChunkedArray) -> pa.Table:
        """One row per distinct site: the site and its registrable domain."""
        values = sites.to_pylist()
        return pa.table(
            [pa.array(values, pa.string()), pa.array([self.registrable(s) for s in values])],
            schema=SITE_SCHEMA,
        )
