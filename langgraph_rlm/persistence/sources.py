"""What a context file holds, as a stream of bytes: a compressed file decompressed as it is read,
a PDF's text, a pipe or a device read once to its end. Only a plain regular file is the bytes on
disk, which the store copies in the kernel (see blobs.put_file)."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from langgraph_rlm.extras import require


def zstd_open(path: Path) -> BinaryIO:
    import zstandard

    return zstandard.open(path, "rb")


def pdf_text(path: Path) -> BinaryIO:
    """pypdf reads the whole document to find its pages; the text it yields is far smaller."""
    pypdf = require("pypdf", "pdf", "reading a PDF context")
    pages = pypdf.PdfReader(path).pages
    return io.BytesIO("\n\n".join(page.extract_text() for page in pages).encode("utf-8", "surrogatepass"))


OPENERS: dict[str, Callable[[Path], BinaryIO]] = {
    ".gz": gzip.open,
    ".bz2": bz2.open,
    ".xz": lzma.open,
    ".zst": zstd_open,
    ".pdf": pdf_text,
}


def is_plain(path: Path) -> bool:
    """A regular file whose bytes are its text (or are not text at all)."""
    return opener(path) is None and stat.S_ISREG(path.stat().st_mode)


def opener(path: Path) -> Callable[[Path], BinaryIO] | None:
    return OPENERS.get(path.suffix.lower())


def open_source(path: Path) -> BinaryIO:
    """The bytes of `path`'s text; a FIFO or a device such as /dev/stdin opens as the stream it is."""
    open_as = opener(path)
    if open_as is None:
        return open(path, "rb")
    return open_as(path)
