"""Files, folders and globs, plain or compressed, read as record-aligned RawBatches."""

from __future__ import annotations

import bz2
import glob
import json
import mmap
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

import numpy as np

from advertisex.errors import ConfigError, InputError
from advertisex.sources.avro_blocks import iter_avro_batches
from advertisex.sources.batch import Format, RawBatch

_EXT_FORMAT = {
    ".ndjson": Format.NDJSON,
    ".jsonl": Format.NDJSON,
    ".json": Format.NDJSON,  # NDJSON or one document: settled by content
    ".csv": Format.CSV,
    ".tsv": Format.CSV,
    ".txt": Format.CSV,
    ".avro": Format.AVRO,
}
_COMPRESSED = {".gz": "gzip", ".gzip": "gzip", ".bz2": "bz2"}
_SKIP_NAMES = {".DS_Store"}
_READ = 4 * 1024 * 1024
_MAX_DOCUMENT = 16 * 1024 * 1024  # larger JSON must be NDJSON or an array


@dataclass(frozen=True)
class FileInput:
    path: Path
    fmt: Format
    compression: str | None
    size: int
    mtime_ns: int

    @property
    def uri(self) -> str:
        return str(self.path)


def expand_paths(paths: list[str]) -> list[Path]:
    """Files named, found under folders (recursively) and matched by globs, sorted, once each."""
    found: dict[Path, None] = {}
    for p in paths:
        if any(ch in p for ch in "*?["):
            matches = sorted(glob.glob(p, recursive=True))
            if not matches:
                raise ConfigError(f"no file matches {p}; check the pattern")
            candidates = [Path(m) for m in matches]
        else:
            candidates = [Path(p)]
        for c in candidates:
            if c.is_dir():
                # In a folder only event files count; a file named outright is always read.
                for f in sorted(c.rglob("*")):
                    if f.is_file() and not _hidden(f.relative_to(c)) and _event_file(f):
                        found[f.resolve()] = None
            elif c.exists():
                found[c.resolve()] = None
            else:
                raise ConfigError(f"{c} does not exist; check the path")
    return list(found)


def _event_file(path: Path) -> bool:
    name = path.name.lower()
    suffix = Path(name).suffix
    if suffix in _COMPRESSED:
        suffix = Path(name[: -len(suffix)]).suffix
    return suffix in _EXT_FORMAT


def _hidden(rel: Path) -> bool:
    return any(part.startswith(".") or part in _SKIP_NAMES for part in rel.parts)


def sniff_file(path: Path, forced: Format | None = None) -> FileInput:
    """Format and compression from the name and the first bytes.

    Content wins where it is certain (compression magic, the Avro magic); the name decides
    between the text formats, since a broken JSON file may look like anything.
    """
    try:
        st = path.stat()
        with path.open("rb") as f:
            head = f.read(4096)
    except OSError as e:
        raise InputError(f"cannot open {path}: {e.strerror}", path=str(path)) from None
    compression = _magic_compression(head)
    name = path.name.lower()
    stem_suffix = Path(name).suffix
    if stem_suffix in _COMPRESSED:
        compression = compression or _COMPRESSED[stem_suffix]
        stem_suffix = Path(name[: -len(stem_suffix)]).suffix
    text = _decompressed_head(path, compression) if compression else head
    if text[:3] == b"Obj" and text[3:4] < b" " and text[3:4] != b"\x01" and forced is None:
        raise InputError(
            f"cannot read {path}: an Avro container of an old version (magic "
            f"{text[:4].hex(' ')}); only Avro 1.3+ containers (4f 62 6a 01) can be read, "
            "rewrite it with a current Avro library",
            path=str(path),
        )
    if forced is not None:
        fmt = forced
    elif text.startswith(b"Obj\x01"):
        fmt = Format.AVRO
    elif stem_suffix in _EXT_FORMAT:
        fmt = _EXT_FORMAT[stem_suffix]
        if fmt is Format.AVRO:
            raise InputError(
                f"cannot read bid requests from {path}: not an Avro container "
                f"(first bytes {text[:4].hex(' ')}); rename it or pass --format if it is "
                "JSON or CSV",
                path=str(path),
            )
    else:
        stripped = text.lstrip(b"\xef\xbb\xbf \t\r\n")
        fmt = Format.NDJSON if stripped[:1] in (b"{", b"[") else Format.CSV
    if fmt is Format.AVRO and compression:
        raise InputError(
            f"cannot read {path}: Avro containers carry their own codec; decompress the file first",
            path=str(path),
        )
    if fmt is not Format.AVRO and text.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(
            f"cannot read {path}: it is UTF-16 text (byte-order mark {text[:2].hex(' ')}); "
            "save it as UTF-8 and ingest it again",
            path=str(path),
        )
    return FileInput(path, fmt, compression, st.st_size, st.st_mtime_ns)


def _magic_compression(head: bytes) -> str | None:
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:3] == b"BZh":
        return "bz2"
    return None


def _decompressed_head(path: Path, compression: str) -> bytes:
    with path.open("rb") as f:
        stream = _DecompressingReader(f, compression)
        return stream.read_block(4096)


class _Decompressor(Protocol):
    def decompress(self, data: bytes, /) -> bytes: ...


class _DecompressingReader:
    """Streams decompressed bytes; a cut-short or corrupt stream ends early and says why."""

    def __init__(self, raw: BinaryIO, compression: str | None) -> None:
        self._raw = raw
        self._compression = compression
        self._d: _Decompressor | None = self._new() if compression else None
        self._pending = b""
        self.truncated = ""  # why the stream ended early, if it did
        self.cr_newlines = False

    def _new(self) -> _Decompressor:
        if self._compression == "gzip":
            return zlib.decompressobj(wbits=47)
        return bz2.BZ2Decompressor()

    def read_block(self, size: int) -> bytes:
        """About `size` decompressed bytes; b"" at the end."""
        data = self._read_block(size)
        # Classic Mac text ends lines with a lone CR: read each as a line end, byte for byte.
        return data.replace(b"\r", b"\n") if self.cr_newlines else data

    def _read_block(self, size: int) -> bytes:
        if self._d is None:
            return self._raw.read(size)
        out = [self._pending]
        n = len(self._pending)
        self._pending = b""
        while n < size and not self.truncated:
            chunk = self._raw.read(_READ)
            if not chunk:
                if not _finished(self._d):
                    self.truncated = f"compressed stream ends early ({self._compression})"
                break
            try:
                piece = self._feed(chunk)
            except (zlib.error, OSError, EOFError) as e:
                self.truncated = f"compressed stream is corrupt: {e}"
                break
            out.append(piece)
            n += len(piece)
        data = b"".join(out)
        if len(data) > size:
            data, self._pending = data[:size], data[size:]
        return data

    def _feed(self, chunk: bytes) -> bytes:
        assert self._d is not None
        pieces = [self._d.decompress(chunk)]
        # Concatenated members (gzip -c a >> f; pigz) are one stream to the reader.
        while _finished(self._d):
            rest = _unused(self._d)
            if not rest:
                break
            self._d = self._new()
            if self._compression == "gzip" and not rest.lstrip(b"\x00"):
                break  # zero padding after the last member
            pieces.append(self._d.decompress(rest))
        return b"".join(pieces)


def _finished(d: _Decompressor) -> bool:
    return bool(getattr(d, "eof", False))


def _unused(d: _Decompressor) -> bytes:
    return bytes(getattr(d, "unused_data", b""))


def read_file_batches(
    fi: FileInput, batch_bytes: int, resume_offset: int = 0, resume_record: int = 0
) -> Iterator[RawBatch]:
    """The file as RawBatches of whole records, starting after `resume_offset` bytes."""
    try:
        with fi.path.open("rb") as raw:
            if fi.fmt is Format.AVRO:
                yield from iter_avro_batches(raw, fi.uri, batch_bytes, resume_offset, resume_record)
                return
            mapped = _mapped(raw, fi)
            if mapped is not None:
                yield from _mapped_batches(fi, mapped, batch_bytes, resume_offset, resume_record)
                return
            reader = _DecompressingReader(raw, fi.compression)
            yield from _text_batches(fi, reader, batch_bytes, resume_offset, resume_record)
    except OSError as e:
        raise InputError(f"cannot read {fi.path}: {e.strerror or e}", path=fi.uri) from None


def _text_batches(
    fi: FileInput,
    reader: _DecompressingReader,
    batch_bytes: int,
    resume_offset: int,
    resume_record: int,
) -> Iterator[RawBatch]:
    header = b""
    header_lines = 0
    offset = 0
    record = 0  # lines consumed so far
    buf = b""
    fmt = fi.fmt
    if fmt is Format.CSV:
        buf = _first_block(reader, batch_bytes)
        end = _csv_header_end(buf)
        while end < 0 and not reader.truncated:
            more = reader.read_block(batch_bytes)
            if not more:
                break
            buf += more
            end = _csv_header_end(buf)
        if end < 0:
            end = len(buf)
        header, buf = buf[:end], buf[end:]
        offset = end
        header_lines = record = header.count(b"\n") or 1
        if not header.endswith(b"\n"):
            header += b"\n"
    elif fmt is Format.NDJSON:
        buf = _first_block(reader, batch_bytes)
        if _is_json_document(buf, reader):
            fmt = Format.JSON_DOC
    # Skip what an earlier run already committed.
    while offset + len(buf) < resume_offset:
        offset += len(buf)
        buf = reader.read_block(batch_bytes)
        if not buf:
            break
    if resume_offset > offset:
        cut = resume_offset - offset
        buf, offset, record = buf[cut:], resume_offset, max(record, resume_record)
    if fmt is Format.JSON_DOC:
        while more := reader.read_block(batch_bytes):
            buf += more
        cut_short = bool(reader.truncated)
        yield RawBatch(
            fi.uri,
            fmt,
            b"" if cut_short else buf,
            offset,
            1,
            offset + len(buf),
            1,
            truncated_tail=buf if cut_short else None,
            truncation_detail=reader.truncated,
        )
        return
    while True:
        eof = False
        while len(buf) < batch_bytes:
            more = reader.read_block(batch_bytes - len(buf))
            if not more:
                eof = True
                break
            buf += more
        cut = len(buf) if eof else _boundary(buf, fmt)
        if cut == 0:
            # One record larger than a batch: read on until it ends.
            more = reader.read_block(batch_bytes)
            if more:
                buf += more
                continue
            eof, cut = True, len(buf)
        data, buf = buf[:cut], buf[cut:]
        tail = None
        if eof and reader.truncated:
            keep = data.rfind(b"\n") + 1
            data, tail = data[:keep], (data[keep:] or None)
        lines = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
        first = record + 1
        record += lines
        end_offset = offset + len(data)
        yield RawBatch(
            fi.uri,
            fmt,
            data,
            offset,
            first,
            end_offset,
            record,
            header=header,
            header_lines=header_lines,
            truncated_tail=tail,
            truncation_detail=reader.truncated if tail is not None else "",
            final=eof,
        )
        offset = end_offset
        if eof:
            return


def _mapped(raw: BinaryIO, fi: FileInput) -> mmap.mmap | None:
    """An uncompressed NDJSON or CSV file mapped into memory, when it reads as plain lines.

    Batches are then slices of the page cache: no read copies, no fresh memory per batch
    (first touches of new memory are what reading costs most here). Lone-CR text, and JSON
    that may be one document, take the streaming path. Like every memory-mapped reader, it
    assumes a file is appended to, not truncated, while it is read.
    """
    if fi.compression or fi.fmt not in (Format.NDJSON, Format.CSV) or fi.size == 0:
        return None
    try:
        mm = mmap.mmap(raw.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):
        return None
    head = mm[: 1 << 20]
    if b"\n" not in head and b"\r" in head:
        return None
    if fi.fmt is Format.NDJSON and not _plainly_lines(head):
        return None
    return mm


def _plainly_lines(head: bytes) -> bool:
    """True when JSON text is surely one value per line: a first line that parses on its
    own and more after it (a document never has that)."""
    s = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    first, nl, rest = s.partition(b"\n")
    if not nl or not rest.strip():
        return False
    try:
        json.loads(first)
    except ValueError:
        return False
    return True


def _mapped_batches(
    fi: FileInput, mm: mmap.mmap, batch_bytes: int, resume_offset: int, resume_record: int
) -> Iterator[RawBatch]:
    """The record-aligned batches of a mapped file, each a slice of the mapping.

    The pages of batches two behind the one being handed out are let go (MADV_DONTNEED): the
    process's resident memory then follows the batches in flight, not the file. (Should a
    slice of them still be read, the kernel maps the pages back from the page cache.)
    """
    m = memoryview(mm)
    size = len(m)
    ends: list[int] = []
    header, header_lines, offset, record = b"", 0, 0, 0
    if fi.fmt is Format.CSV:
        end, head_len = -1, 1 << 20
        while True:
            end = _csv_header_end(bytes(m[:head_len]))
            if end >= 0 or head_len >= size:
                break
            head_len *= 4
        offset = end if end >= 0 else size
        header = bytes(m[:offset])
        header_lines = record = header.count(b"\n") or 1
        if not header.endswith(b"\n"):
            header += b"\n"
    if resume_offset > offset:
        offset, record = min(resume_offset, size), max(record, resume_record)
    while True:  # an empty body (a header alone) is still one batch, so the file is recorded
        end = min(offset + batch_bytes, size)
        while end < size:
            cut = _boundary(m[offset:end], fi.fmt)
            if cut:
                end = offset + cut
                break
            end = min(end + batch_bytes, size)  # one record larger than a batch
        data = m[offset:end]
        lines = _count_newlines(data) + (1 if data and data[-1] != 10 else 0)
        ends.append(end)
        if len(ends) > 2:
            done = ends[-3] - ends[-3] % mmap.PAGESIZE
            if done:
                mm.madvise(mmap.MADV_DONTNEED, 0, done)
        yield RawBatch(
            fi.uri,
            fi.fmt,
            data,
            offset,
            record + 1,
            end,
            record + lines,
            header=header,
            header_lines=header_lines,
            final=end == size,
        )
        offset, record = end, record + lines
        if offset == size:
            return


def _count_newlines(data: bytes | memoryview) -> int:
    """Newlines in data, counted a slice at a time (small temporaries, reused memory)."""
    a = np.frombuffer(data, dtype=np.uint8)
    step = 1 << 20
    return sum(int(np.count_nonzero(a[i : i + step] == 10)) for i in range(0, a.size, step))


def _first_block(reader: _DecompressingReader, batch_bytes: int) -> bytes:
    """The first block of a text file; lines ending in a lone CR switch the reader to CR."""
    buf = reader.read_block(batch_bytes)
    while buf.endswith(b"\r") and b"\n" not in buf:  # a CRLF the block may have cut
        more = reader.read_block(batch_bytes)
        if not more:
            break
        buf += more
    if b"\n" not in buf and b"\r" in buf:
        reader.cr_newlines = True
        buf = buf.replace(b"\r", b"\n")
    return buf


def _csv_header_end(buf: bytes) -> int:
    """End of the header: the first record that is not a blank line; -1 if there is none yet."""
    lead = len(buf) - len(buf.lstrip(b"\r\n"))
    end = _csv_boundary(memoryview(buf)[lead:], first=True)
    return end + lead if end >= 0 else -1


def _boundary(buf: bytes | memoryview, fmt: Format) -> int:
    """End of the last whole record in buf (0 if there is none)."""
    if fmt is Format.CSV:
        return max(_csv_boundary(buf, first=False), 0)
    if isinstance(buf, memoryview):
        a = np.frombuffer(buf, dtype=np.uint8)
        step = 1 << 16
        for stop in range(a.size, 0, -step):
            nl = np.flatnonzero(a[max(stop - step, 0) : stop] == 10)
            if nl.size:
                return max(stop - step, 0) + int(nl[-1]) + 1
        return 0
    return buf.rfind(b"\n") + 1


def _csv_boundary(buf: bytes | memoryview, *, first: bool) -> int:
    """End of the first (or last) record: a newline outside quotes; -1 if there is none.

    RFC 4180 escapes a quote by doubling it, so quote parity alone tells inside from outside.
    The scan goes a slice at a time from the end it looks for, with byte-sized temporaries.
    """
    a = np.frombuffer(buf, dtype=np.uint8)
    step = 1 << 16
    if first:
        parity = 0  # of the quotes before the slice
        for start in range(0, a.size, step):
            c = a[start : start + step]
            inside = np.bitwise_xor.accumulate((c == 34).view(np.uint8)) ^ parity
            nl = np.flatnonzero((c == 10) & (inside == 0))
            if nl.size:
                return start + int(nl[0]) + 1
            parity = int(inside[-1])
        return -1
    total = sum(int(np.count_nonzero(a[i : i + step] == 34)) for i in range(0, a.size, step)) & 1
    after = 0  # parity of the quotes from the slice's end to the buffer's end
    for stop in range(a.size, 0, -step):
        start = max(stop - step, 0)
        c = a[start:stop]
        # parity of the quotes from each byte to the buffer's end, then of those before it
        suffix = np.bitwise_xor.accumulate((c == 34).view(np.uint8)[::-1])[::-1] ^ after
        nl = np.flatnonzero((c == 10) & ((suffix ^ total) == 0))
        if nl.size:
            return start + int(nl[-1]) + 1
        after = int(suffix[0])
    return -1


def _is_json_document(buf: bytes, reader: _DecompressingReader) -> bool:
    """True when the text is one JSON document (an array, or one value over many lines)."""
    s = buf.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not s.startswith((b"{", b"[")):
        return False
    if b"\n" not in s.rstrip():
        return s.startswith(b"[")  # one line: an array is a document, an object a record
    lines = s.split(b"\n", 2)  # two at least: the text has a newline
    first, second = lines[0].rstrip(), lines[1].strip()
    if first.endswith((b"{", b"[", b",")) and not (
        second.startswith(b"{") and second.endswith(b"}")
    ):
        # A structure left open on the next line (pretty-printed, or an array one element
        # per line): one document, even if broken further on. A cut first line followed by
        # whole records is NDJSON.
        return True
    # NDJSON (even with a broken first line) is not one value; a short document that parses is.
    if len(s) > _MAX_DOCUMENT:
        return False
    try:
        json.loads(s)
    except ValueError:
        return False
    return True


def file_identity(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


def peek_text(fi: FileInput, size: int = 256 * 1024) -> bytes:
    """The first decompressed bytes of a file, for routing."""
    with fi.path.open("rb") as f:
        return _DecompressingReader(f, fi.compression).read_block(size)
