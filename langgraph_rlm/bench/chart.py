"""Line charts on a pixel canvas, labelled in a 3x5 bitmap font: enough for a benchmark's
accuracy and tokens against size, with nothing to install."""

from __future__ import annotations

import math
from itertools import pairwise

from langgraph_rlm.bench.png import encode_png
from langgraph_rlm.bench.sizes import size_label

CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ%./- "
BITS = (
    "111101101101111 010110010010111 111001111100111 111001111001111 101101111001001 "
    "111100111001111 111100111101111 111001001001001 111101111101111 111101111001111 "
    "010101111101101 110101110101110 011100100100011 110101101101110 111100110100111 "
    "111100110100100 011100101101011 101101111101101 111010010010111 001001001101010 "
    "101101110101101 100100100100111 101111111101101 110101101101101 010101101101010 "
    "110101110100100 010101101110011 110101110101101 011100010001110 111010010010010 "
    "101101101101111 101101101101010 101101111111101 101101010101101 101101010010010 "
    "111001010100111 101001010100101 000000000000010 001001010100100 000000111000000 "
    "000000000000000"
).replace(" ", "")
GLYPHS = {char: BITS[i * 15 : (i + 1) * 15] for i, char in enumerate(CHARS)}
WHITE, INK, GRID, LINE = (255, 255, 255), (40, 40, 40), (215, 215, 215), (31, 119, 180)
SCALE = 2
LEFT, RIGHT, TOP, BOTTOM = 80, 30, 34, 44


class Chart:
    """Panels stacked top to bottom, each a series of values against sizes on a log2 axis."""

    def __init__(self, width: int, height: int, panels: int = 2) -> None:
        self.width, self.height = width, height
        self.panel_height = height // panels
        self.pixels = bytearray(bytes(WHITE) * width * height)

    def panel(
        self,
        index: int,
        title: str,
        sizes: list[int],
        values: list[float],
        top: float,
        color: tuple[int, int, int] = LINE,
        axis: list[int] | None = None,
    ) -> None:
        """Drawn again on the same panel with another color and the same `axis` (all the sizes of
        the panel), a second series shares its axes even where it lacks some sizes."""
        top = top or 1
        y0 = index * self.panel_height + TOP
        y1 = (index + 1) * self.panel_height - BOTTOM
        x0, x1 = LEFT, self.width - RIGHT
        self.text(x0, index * self.panel_height + 10, title)
        for share in (0, 0.5, 1):
            y = round(y1 - share * (y1 - y0))
            self.line(x0, y, x1, y, GRID)
            label = compact(share * top)
            self.text(x0 - 8 - len(label) * 4 * SCALE, y - 2 * SCALE, label)
        self.line(x0, y0, x0, y1, INK)
        self.line(x0, y1, x1, y1, INK)
        axis = axis or sizes
        low, high = (math.log2(min(axis)), math.log2(max(axis))) if axis else (0, 0)
        points = []
        for size, value in zip(sizes, values, strict=True):
            share = (math.log2(size) - low) / (high - low) if high > low else 0.5
            x = round(x0 + 20 + share * (x1 - x0 - 40))
            y = round(y1 - min(value / top, 1) * (y1 - y0))
            label = size_label(size).upper()
            self.text(x - len(label) * 2 * SCALE, y1 + 8, label)
            points.append((x, y))
        for (xa, ya), (xb, yb) in pairwise(points):
            for offset in (-1, 0, 1):
                self.line(xa, ya + offset, xb, yb + offset, color)
        for x, y in points:
            self.box(x - 3, y - 3, 7, 7, color)

    def text(self, x: int, y: int, text: str) -> None:
        for i, char in enumerate(text.upper()):
            glyph = GLYPHS.get(char, GLYPHS[" "])
            for bit, on in enumerate(glyph):
                if on == "1":
                    self.box(x + i * 4 * SCALE + bit % 3 * SCALE, y + bit // 3 * SCALE, SCALE, SCALE, INK)

    def line(self, xa: int, ya: int, xb: int, yb: int, color: tuple[int, int, int]) -> None:
        steps = max(abs(xb - xa), abs(yb - ya), 1)
        for step in range(steps + 1):
            self.dot(round(xa + (xb - xa) * step / steps), round(ya + (yb - ya) * step / steps), color)

    def box(self, x: int, y: int, width: int, height: int, color: tuple[int, int, int]) -> None:
        for dy in range(height):
            for dx in range(width):
                self.dot(x + dx, y + dy, color)

    def dot(self, x: int, y: int, color: tuple[int, int, int]) -> None:
        if 0 <= x < self.width and 0 <= y < self.height:
            at = (y * self.width + x) * 3
            self.pixels[at : at + 3] = bytes(color)

    def png(self) -> bytes:
        return encode_png(self.width, self.height, bytes(self.pixels))


def compact(value: float) -> str:
    for suffix, unit in (("M", 1e6), ("K", 1e3)):
        if value >= unit:
            return f"{value / unit:.1f}".removesuffix(".0") + suffix
    return f"{value:.0f}"
