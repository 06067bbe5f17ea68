"""NDJSON split into lines: numbers, offsets and the first non-blank byte of each line."""

from __future__ import annotations

from advertisex.formats.json import lines_table


def test_lines_carry_number_offset_and_first_non_blank_byte() -> None:
    data = b'  {"a":1}\n\t[1]\r\n\n   \r\n\x00x\n"s"'
    t = lines_table(data, start_offset=100, first_record=7).to_pydict()

    assert t["_record"] == [7, 8, 9, 10, 11, 12]
    assert t["_offset"] == [100, 110, 116, 117, 122, 125]
    assert t["_raw"] == ['  {"a":1}\n', "\t[1]\r\n", "\n", "   \r\n", "\x00x\n", '"s"']
    # '{' opens an object; blank lines (-1) are no records; a NUL is a byte like any other.
    assert t["_lead"] == [ord("{"), ord("["), -1, -1, 0, ord('"')]


def test_a_line_of_many_blanks_is_blank() -> None:
    t = lines_table(b" " * 5000 + b"\n" + b" " * 70 + b"{}", 0, 1).to_pydict()
    assert t["_lead"] == [-1, ord("{")]


def test_lines_across_scan_slices_keep_their_offsets() -> None:
    # Over 1 MiB, newlines are searched a slice at a time: lines crossing slice ends included.
    lines = [b'{"n":%d,"pad":"%s"}' % (i, b"x" * (i % 977)) for i in range(6000)]
    data = b"\n".join(lines) + b"\n"
    assert len(data) > 2 << 20
    t = lines_table(data, 0, 1).to_pydict()
    expected_offsets = [0]
    for line in lines[:-1]:
        expected_offsets.append(expected_offsets[-1] + len(line) + 1)
    assert t["_offset"] == expected_offsets
    assert [r.rstrip("\n").encode() for r in t["_raw"]] == lines
