"""Confluent wire-format schemas from a Schema Registry: a real HTTP server on loopback."""

from __future__ import annotations

import io
import json
import struct
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import fastavro
import httpx
import pytest

from advertisex.config import load_settings
from advertisex.errors import InputError
from advertisex.sources.confluent import SchemaRegistry
from tests.api.conftest import collector
from tests.api.test_collector import rows
from tests.conftest import SEED_BID_SCHEMA, seed_bid


class _Registry(BaseHTTPRequestHandler):
    """Answers GET /schemas/ids/5 like Confluent's Schema Registry; 404 for any other id."""

    def do_GET(self) -> None:
        if self.path == "/schemas/ids/5":
            body = json.dumps({"schema": json.dumps(SEED_BID_SCHEMA)}).encode()
            self.send_response(200)
        else:
            body = b'{"error_code": 40403, "message": "Schema not found"}'
            self.send_response(404)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def registry_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Registry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_registry_lookup_and_unknown_id(registry_url: str) -> None:
    reg = SchemaRegistry(url=registry_url)
    assert json.loads(reg.schema(5)) == SEED_BID_SCHEMA
    with pytest.raises(InputError, match="unknown Avro schema id 6"):
        reg.schema(6)


def test_collector_resolves_wire_format_through_the_registry(
    registry_url: str, tmp_path: Path
) -> None:
    settings = load_settings(db=tmp_path / "s.duckdb", schema_registry_url=registry_url)
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(SEED_BID_SCHEMA), seed_bid("reg1"))
    with collector(settings) as (url, _):
        r = httpx.post(
            url + "/v1/bid-requests", content=b"\x00" + struct.pack(">I", 5) + buf.getvalue()
        )
    assert (r.status_code, r.json()["accepted"]) == (202, 1)
    assert rows(settings.db, "SELECT event_id FROM bid_requests") == [("reg1",)]
