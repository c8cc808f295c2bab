"""Delimited text files (.csv, .tsv, .txt, optionally gzip-compressed), read in streaming chunks.

Why a full pre-pass before parsing: the encoding must be known before the first chunk is handed
on (a Latin-1 byte at row 400,000 would otherwise abort an upload halfway), and the same pass hashes
the bytes for the upload's fingerprint and finds a truncated gzip before any work is done. Decoding
is far cheaper than parsing, so the pass costs a fraction of the read.

Rows are numbered as a spreadsheet shows them (header = row 1, first record = row 2); a quoted
value spanning several lines counts as one row, as it does in a spreadsheet.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import io
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from features.errors import ContractError
from features.sources.base import Progress, RawChunk, SourceInfo, check_header, file_error, report_progress

DELIMITERS = (",", ";", "\t", "|")
SAMPLE_BYTES = 256 * 1024
BLOCK = 1 << 20
EXPANSION = 20  # a gzip upload may expand to this many times the upload size limit (CSV packs 5-10x)
GZIP_MAGIC = b"\x1f\x8b"
_CONTROL = bytes(set(range(32)) - {9, 10, 12, 13})


@dataclass(frozen=True)
class TextFacts:
    encoding: str
    sha256: str
    sample: str  # complete lines from the start of the decoded text


class _CountingReader(io.RawIOBase):
    """Counts the bytes taken from the file on disk, so progress is in the units of its size."""

    def __init__(self, handle: IO[bytes]) -> None:
        self._handle = handle
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = self._handle.readinto(buffer)  # type: ignore[attr-defined]
        self.count += n or 0
        return n or 0


def is_gzip(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == GZIP_MAGIC


def inspect_text(path: Path, name: str, compressed: bool, max_expanded: int | None = None) -> TextFacts:
    """Encoding (UTF-8 with or without BOM, UTF-16 with BOM, else Windows-1252, else Latin-1) and hash.

    A file that is UTF-8 but for a few stray bytes is refused, naming the line of the first one.

    ``max_expanded`` bounds the decompressed size of a gzip file, so a small upload that inflates
    to many gigabytes (a decompression bomb) is refused before it is parsed.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as raw:
        raw_reader = _HashingReader(raw, digest)
        stream: IO[bytes] = raw_reader  # type: ignore[assignment]
        if compressed:
            stream = _Limited(gzip.GzipFile(fileobj=raw_reader, mode="rb"), max_expanded, name)  # type: ignore[arg-type, assignment]
        try:
            head = stream.read(SAMPLE_BYTES)
            encoding = _encoding_of_head(name, head)
            if encoding == "utf-8":
                encoding = _encoding_of_body(name, head, stream)
            else:
                while stream.read(BLOCK):
                    pass
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise file_error(
                name, f"the gzip data is truncated or corrupt ({exc}); upload the complete file again"
            ) from None
    text = head.decode(encoding, errors="replace")
    if len(head) == SAMPLE_BYTES:  # keep only complete lines (classic Mac files end lines in CR alone)
        text = text[: max(text.rfind("\n"), text.rfind("\r"), 0)]
    return TextFacts(encoding, digest.hexdigest(), text)


class _Limited:
    """A binary stream that refuses to yield more than ``limit`` bytes in total."""

    def __init__(self, stream: IO[bytes], limit: int | None, name: str) -> None:
        self._stream, self._limit, self._name, self._count = stream, limit, name, 0

    def read(self, size: int = -1) -> bytes:
        block = self._stream.read(size)
        self._count += len(block)
        if self._limit is not None and self._count > self._limit:
            raise file_error(
                self._name,
                f"the gzip data expands to more than {self._limit:,} bytes (the size limit times "
                f"{EXPANSION}): refused as a likely decompression bomb",
            )
        return block


class _HashingReader(io.RawIOBase):
    def __init__(self, handle: IO[bytes], digest: hashlib._Hash) -> None:
        self._handle = handle
        self._digest = digest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = self._handle.readinto(buffer)  # type: ignore[attr-defined]
        if n:
            self._digest.update(buffer[:n])
        return n or 0


def _encoding_of_head(name: str, head: bytes) -> str:
    if not head.strip():
        raise file_error(name, "the file is empty: expected a header row and at least one data row")
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    controls = sum(head.count(bytes([c])) for c in _CONTROL)
    if b"\x00" in head or controls > len(head) // 100:
        raise file_error(
            name,
            "the file is not delimited text: it contains binary data (NUL or control bytes). Expected a "
            "CSV saved as UTF-8 or Latin-1; UTF-16 needs a byte-order mark; Excel files must end in .xlsx",
        )
    return "utf-8"


def _encoding_of_body(name: str, head: bytes, stream: IO[bytes]) -> str:
    """The first of UTF-8 / cp1252 / Latin-1 that decodes every byte of the file.

    A file that is UTF-8 except for a few bytes (a line pasted from a Windows program) is refused
    rather than read as cp1252, which would silently turn every 'ö' of its ids into 'Ã¶' and start
    new series: see :class:`_Utf8Census`.
    """
    census = _Utf8Census()
    cp1252: codecs.IncrementalDecoder | None = codecs.getincrementaldecoder("cp1252")()
    block = head
    while block:
        census.feed(block)
        cp1252 = _still_decodes(cp1252, block)
        block = stream.read(BLOCK)
    census.feed(b"", final=True)
    cp1252 = _still_decodes(cp1252, b"", final=True)
    if census.invalid == 0:
        return "utf-8"
    census.refuse_if_mostly_utf8(name)
    return "cp1252" if cp1252 is not None else "latin-1"


def _still_decodes(
    decoder: codecs.IncrementalDecoder | None, block: bytes, final: bool = False
) -> codecs.IncrementalDecoder | None:
    if decoder is None:
        return None
    try:
        decoder.decode(block, final)
    except UnicodeDecodeError:
        return None
    return decoder


class _Utf8Census:
    """Decodes as UTF-8 without stopping at a bad byte, counting valid multi-byte characters and bad bytes.

    A genuine Windows-1252 or Latin-1 file has accented letters as single bytes, which are not UTF-8,
    and seldom a byte pair that happens to be valid UTF-8. A UTF-8 file with a stray byte is the
    reverse. When the *different* valid multi-byte characters outnumber the bad bytes, the file is
    UTF-8 with a few bytes from elsewhere, and the line of the first of them is remembered. Counting
    different characters, not occurrences: a cp1252 file repeating "NESCAFÉ®" (É® is a valid UTF-8
    pair, 'ɮ') beside one "MÜNCHEN" read as ten UTF-8 characters against one bad byte and was refused.
    """

    MAX_KINDS = 1_000  # enough to outnumber any handful of bad bytes

    def __init__(self) -> None:
        # a bad byte decodes as a lone surrogate (U+DC80-U+DCFF), which valid UTF-8 never yields
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
        self.kinds: set[str] = set()  # different valid non-ASCII characters
        self.invalid = 0
        self.first_invalid: tuple[int, int] | None = None  # (line, byte value)
        self._line = 1
        self._after_cr = False

    def feed(self, block: bytes, final: bool = False) -> None:
        text = self._decoder.decode(block, final)
        if text.isascii():
            self._count_lines(text)
            return
        invalid = 0
        try:
            text.encode("utf-8")  # stops at the first lone surrogate, a bad byte
        except UnicodeEncodeError as exc:
            invalid = len(text.encode("utf-8", "surrogateescape")) - len(text.encode("utf-8", "ignore"))
            if self.first_invalid is None:
                self._count_lines(text[: exc.start])
                self.first_invalid = (self._line, ord(text[exc.start]) - 0xDC00)
        self._count_lines(text)
        self.invalid += invalid
        if len(self.kinds) < self.MAX_KINDS:
            self.kinds |= {c for c in set(text) if ord(c) > 127 and not 0xDC80 <= ord(c) <= 0xDCFF}

    def _count_lines(self, text: str) -> None:
        """Line breaks up to the first bad byte: LF, CRLF or a lone CR (classic Mac)."""
        if self.first_invalid is not None or not text:
            return
        lf, cr = text.count("\n"), text.count("\r")
        self._line += lf + cr - (text.count("\r\n") if lf and cr else 0)
        if self._after_cr and text.startswith("\n"):  # a CRLF split between two blocks
            self._line -= 1
        self._after_cr = text.endswith("\r")

    def refuse_if_mostly_utf8(self, name: str) -> None:
        if self.first_invalid is None or len(self.kinds) <= self.invalid:
            return
        line, byte = self.first_invalid
        raise file_error(
            name,
            f"the file is UTF-8 except for {self.invalid:,} byte(s) that are not; the first, 0x{byte:02X}, "
            "is on this line (often a dash or quote pasted from a Windows program). Reading the whole "
            f"file as Windows-1252 would garble its {len(self.kinds):,} different accented character(s) "
            "('ö' as 'Ã¶'): re-save the file as UTF-8 (in Excel: 'CSV UTF-8') and upload again",
            row=line,
        )


def sniff_delimiter(sample: str) -> str:
    """The delimiter that splits the first lines into the most, equally many, fields.

    Chosen by counting rather than by ``csv.Sniffer``, whose guesses on short or quoted samples are
    hard to predict; a tie goes to the order of ``DELIMITERS`` (comma first).
    """
    lines = sample.splitlines()[:50]
    best, best_fields = ",", 1
    for delimiter in DELIMITERS:
        rows = [r for r in csv.reader(lines, delimiter=delimiter) if r]
        if not rows:
            continue
        width = len(rows[0])
        consistent = sum(len(r) == width for r in rows) >= max(1, int(0.9 * len(rows)))
        if width > best_fields and consistent:
            best, best_fields = delimiter, width
    return best


class CsvSource:
    """A delimited text file; ``chunks()`` re-opens it, so reading is repeatable."""

    def __init__(
        self,
        path: Path,
        name: str,
        progress: Progress | None,
        chunk_rows: int = 100_000,
        max_bytes: int | None = None,
    ) -> None:
        self.path, self.name, self.progress, self.chunk_rows = path, name, progress, chunk_rows
        self.compressed = is_gzip(path)
        max_expanded = max_bytes * EXPANSION if max_bytes is not None else None
        facts = inspect_text(path, name, self.compressed, max_expanded)
        self.sha256 = facts.sha256
        self.encoding = facts.encoding
        lines = io.StringIO(facts.sample, newline="")  # any line break, a lone CR included
        # Excel's "sep=;" first line names the delimiter (Excel writes and honours it); it was read
        # as the header: "no column for 'date'; the file's columns are ['sep=;']".
        first = lines.readline().rstrip("\r\n").strip(" ")  # "sep=\t" names a tab
        declared = re.fullmatch(r"sep=(.)", first)
        self.skip = 1 if declared else 0
        if not declared:
            lines.seek(0)
        self.delimiter = declared.group(1) if declared else sniff_delimiter(facts.sample)
        header = next(csv.reader(lines, delimiter=self.delimiter), [])
        self.columns = check_header(name, header)
        self.info = SourceInfo(
            "csv.gz" if self.compressed else "csv",
            {"encoding": self.encoding, "delimiter": self.delimiter},
        )

    def chunks(self) -> Iterator[RawChunk]:
        total = self.path.stat().st_size
        with open(self.path, "rb") as raw:
            counter = _CountingReader(raw)
            binary: IO[bytes] = (
                gzip.GzipFile(fileobj=counter, mode="rb") if self.compressed else io.BufferedReader(counter)  # type: ignore[assignment]
            )
            text = io.TextIOWrapper(binary, encoding=self.encoding, newline="")
            try:
                reader = pd.read_csv(
                    text,
                    sep=self.delimiter,
                    skiprows=self.skip,
                    header=0,
                    names=self.columns,
                    index_col=False,
                    dtype=str,
                    keep_default_na=False,
                    na_filter=False,
                    skip_blank_lines=False,
                    chunksize=self.chunk_rows,
                    engine="c",
                )
                for frame in reader:
                    rows = frame.index.to_numpy(dtype=np.int64) + 2 + self.skip
                    yield RawChunk(frame.reset_index(drop=True), rows)
                    report_progress(self.progress, counter.count, total)
            except pd.errors.ParserError as exc:
                raise _parser_problem(self.name, exc) from None
            except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
                raise file_error(self.name, f"the gzip data is truncated or corrupt ({exc})") from None
            except UnicodeDecodeError as exc:
                raise file_error(
                    self.name, f"the text is not valid {self.encoding} ({exc.reason}): save the file as UTF-8"
                ) from None
        report_progress(self.progress, total, total)


def _parser_problem(name: str, exc: Exception) -> ContractError:
    text = str(exc)
    match = re.search(r"line (\d+)", text)
    row = int(match.group(1)) if match else None
    if starting := re.search(r"starting at row (\d+)", text):  # pandas counts lines from 0 here
        row = int(starting.group(1)) + 1
    if "EOF inside string" in text:
        message = "a quoted field is never closed: the file is truncated or has a stray '\"'"
    elif "Expected" in text and "fields" in text:
        found = re.search(r"Expected (\d+) fields in line \d+, saw (\d+)", text)
        message = (
            f"this row has {found.group(2)} fields but the header has {found.group(1)}: a stray delimiter "
            "or an unquoted value containing one"
            if found
            else text
        )
    else:
        message = f"cannot be parsed as delimited text: {text}"
    return file_error(name, message, row=row)
