"""Which encoding a context's bytes are in, and their UTF-8: the REPL decodes every context as
UTF-8, so text in another encoding is re-encoded once, as it is stored, instead of failing in
every cell."""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterable, Iterator

UTF8 = "utf-8"
BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
WESTERN = "cp1252"
WINDOW = 1 << 16


class NotText(ValueError):
    """Bytes that no encoding reads as text; the message is one line for the user."""


def looks_binary(sample: bytes) -> bool:
    """A NUL byte outside UTF-16/32 marks a binary file without asking the detector."""
    return b"\0" in sample and not sample.startswith(BOMS)


def text_encoding(sample: bytes, complete: bool) -> str | None:
    """The encoding `sample` (a file's first bytes, all of them when `complete`) is in, or None
    for bytes that are not text. UTF-8 is taken as it is; anything else is charset-normalizer's
    reading."""
    if b"\0" not in sample and valid_utf8(sample, complete):
        return UTF8
    if looks_binary(sample):
        return None
    from charset_normalizer import from_bytes

    readings = from_bytes(sample)
    best = readings.best()
    if best is None:
        return None
    if latin_code_page(best.encoding) and any(WESTERN in r.could_be_from_charset for r in readings):
        return WESTERN
    return best.encoding


def latin_code_page(encoding: str) -> bool:
    """charset-normalizer cannot tell the single-byte Latin code pages apart on accented text (it
    reads French as Baltic cp1257 or as mac_latin2), so where windows-1252, the usual legacy
    encoding of Western text, reads the bytes as text too, it is taken."""
    from charset_normalizer.cd import encoding_languages
    from charset_normalizer.utils import is_multi_byte_encoding

    return not is_multi_byte_encoding(encoding) and "Latin Based" in encoding_languages(encoding)


def valid_utf8(data: bytes, complete: bool) -> bool:
    """A character cut at the end of an incomplete sample is no fault of the file."""
    try:
        codecs.getincrementaldecoder(UTF8)().decode(data, final=complete)
    except UnicodeDecodeError:
        return False
    return True


def all_utf8(chunks: Iterable[bytes]) -> bool:
    decoder = codecs.getincrementaldecoder(UTF8)()
    try:
        for chunk in _ending(chunks):
            decoder.decode(chunk, final=not chunk)
    except UnicodeDecodeError:
        return False
    return True


def as_utf8(chunks: Iterable[bytes], label: str, warn: Callable[[str], None]) -> Iterator[bytes]:
    """`chunks` as UTF-8, streaming: UTF-8 passes as it is; from the first byte that is not, the
    rest is read in the encoding its next bytes show (an ASCII head reads the same in any of
    them), with one warning naming it; NotText where no encoding reads them."""
    decoder = codecs.getincrementaldecoder(UTF8)()
    offset = 0
    source = _ending(chunks)
    for chunk in source:
        data = decoder.getstate()[0] + chunk
        try:
            decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as exc:
            yield data[: exc.start]
            yield from _recoded(data[exc.start :], source, offset + exc.start, label, warn)
            return
        done = len(data) - len(decoder.getstate()[0])
        offset += done
        yield data[:done]


def _recoded(
    head: bytes, rest: Iterator[bytes], offset: int, label: str, warn: Callable[[str], None]
) -> Iterator[bytes]:
    while len(head) < WINDOW and (more := next(rest, b"")):
        head += more
    encoding = text_encoding(head[:WINDOW], complete=len(head) <= WINDOW)
    if encoding is None or encoding == UTF8:
        raise NotText(f"{label} is not text in any encoding (bytes from {offset:,} on)")
    warn(f"{label} is not UTF-8: read as {encoding}")
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        yield decoder.decode(head).encode(UTF8, "surrogatepass")
        for chunk in rest:
            yield decoder.decode(chunk, final=not chunk).encode(UTF8, "surrogatepass")
    except UnicodeDecodeError as exc:
        raise NotText(f"{label} is not text: not UTF-8, and not {encoding} either ({exc.reason})") from None


def _ending(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """`chunks`, then one empty chunk that tells a decoder the input ended."""
    yield from (chunk for chunk in chunks if chunk)
    yield b""
