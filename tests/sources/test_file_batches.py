"""Batches of a mapped (uncompressed) file equal those read as a stream (gzip)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from advertisex.sources.files import read_file_batches, sniff_file


def _lines(path: Path, batch_bytes: int, resume: tuple[int, int] = (0, 0)) -> list[tuple]:
    """Every line the batches hold, as (line number, byte offset, text, header).

    Batches may be cut at other places on the two paths (the stream cannot know a batch
    that ends at a block end is the last), but the lines, their numbers and offsets, and
    the bookkeeping of each batch must agree.
    """
    batches = list(read_file_batches(sniff_file(path), batch_bytes, *resume))
    assert batches[-1].final and not any(b.final for b in batches[:-1])
    out = []
    for prev, b in zip([None, *batches], batches, strict=False):
        if prev is not None:
            assert (b.start_offset, b.first_record) == (prev.end_offset, prev.end_record + 1)
        data = bytes(b.data)
        assert b.end_offset - b.start_offset == len(data)
        pieces = data.split(b"\n")
        if pieces and pieces[-1] == b"":
            pieces.pop()
        assert b.end_record - b.first_record + 1 == len(pieces)
        offset = b.start_offset
        for i, piece in enumerate(pieces):
            out.append((b.first_record + i, offset, piece, b.header, b.header_lines))
            offset += len(piece) + 1
    return out


def _both(tmp_path: Path, name: str, body: bytes) -> tuple[Path, Path]:
    plain = tmp_path / name
    plain.write_bytes(body)
    packed = tmp_path / (name + ".gz")
    packed.write_bytes(gzip.compress(body))
    return plain, packed


def test_mapped_batches_are_memory_slices(tmp_path: Path) -> None:
    plain, packed = _both(tmp_path, "a.ndjson", b'{"a":1}\n{"a":2}\n')
    assert isinstance(next(read_file_batches(sniff_file(plain), 1 << 20)).data, memoryview)
    assert isinstance(next(read_file_batches(sniff_file(packed), 1 << 20)).data, bytes)


_line = st.one_of(
    st.just(b'{"user_id":"u1","creative_id":"c1","timestamp":"2026-01-01T00:00:00Z"}'),
    st.just(b"{broken"),
    st.just(b""),
    st.just(b"   "),
    st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"").replace(b"\r", b"")),
    st.just(b'{"big":"' + b"x" * 300 + b'"}'),
)


@settings(max_examples=60, deadline=None)
@given(
    lines=st.lists(_line, min_size=2, max_size=40),
    last_newline=st.booleans(),
    batch_bytes=st.integers(16, 400),
)
def test_ndjson_mapped_equals_streamed(
    tmp_path_factory: pytest.TempPathFactory,
    lines: list[bytes],
    last_newline: bool,
    batch_bytes: int,
) -> None:
    tmp = tmp_path_factory.mktemp("nd")
    lines = [b'{"first":true}', *lines]  # a first line that parses: read as lines
    body = b"\n".join(lines) + (b"\n" if last_newline else b"")
    plain, packed = _both(tmp, "e.ndjson", body)
    mapped = _lines(plain, batch_bytes)
    assert mapped == _lines(packed, batch_bytes)
    assert b"\n".join(line[2] for line in mapped) == body.removesuffix(b"\n")
    # Resuming after any line gives the rest, the same way.
    for number, offset, text, *_ in mapped[:3]:
        resume = (offset + len(text) + 1, number)
        if resume[0] < len(body):
            rest = _lines(plain, batch_bytes, resume)
            assert rest == _lines(packed, batch_bytes, resume)
            assert rest == mapped[number:]


_cell = st.one_of(
    st.just(b"a"),
    st.just(b'"x,y"'),
    st.just(b'"multi\nline"'),
    st.just(b'"say ""hi"""'),
    st.just(b""),
    st.just(b"\xe9t\xe9"),
)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(st.lists(_cell, min_size=1, max_size=5), min_size=0, max_size=30),
    crlf=st.booleans(),
    batch_bytes=st.integers(16, 300),
)
# A header alone whose CRLF the stream's first block cuts between CR and LF: it once read the
# file as lone-CR text, with an empty line after the header.
@example(rows=[], crlf=True, batch_bytes=46)
def test_csv_mapped_equals_streamed(
    tmp_path_factory: pytest.TempPathFactory,
    rows: list[list[bytes]],
    crlf: bool,
    batch_bytes: int,
) -> None:
    tmp = tmp_path_factory.mktemp("csv")
    nl = b"\r\n" if crlf else b"\n"
    body = nl.join(
        [b"timestamp,user_id,campaign_id,conversion_type"] + [b",".join(r) for r in rows]
    )
    plain, packed = _both(tmp, "c.csv", body + nl)
    mapped = _lines(plain, batch_bytes)
    assert mapped == _lines(packed, batch_bytes)
    assert all(line[3].startswith(b"timestamp,") for line in mapped)
