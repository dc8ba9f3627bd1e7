"""Context sizes as `--sizes` spells them."""

from __future__ import annotations

SMALLEST, LARGEST = 2**8, 2**20
DEFAULT = "13,14,15,16"
UNITS = {"k": 2**10, "m": 2**20}


def parse_sizes(spec: str) -> list[int]:
    """Comma-separated; each a power of two (`13` is 2^13 tokens), a count with k or m (`8k`,
    `1m`: binary units) or a plain count of tokens (`5000`). Raises ValueError saying which."""
    sizes: list[int] = []
    for item in (part.strip().lower() for part in spec.split(",")):
        try:
            if item[-1:] in UNITS:
                tokens = int(float(item[:-1]) * UNITS[item[-1]])
            else:
                number = int(item)
                tokens = 2**number if 0 <= number <= 30 else number
        except (ValueError, OverflowError):
            raise ValueError(f"--sizes: {item!r} is not a size (e.g. 13,14 for 2^13, 2^14; 8k; 1m)") from None
        if not SMALLEST <= tokens <= LARGEST:
            raise ValueError(f"--sizes: {item!r} is {tokens:,} tokens; sizes go from 256 (8) to 1m (20)")
        if tokens not in sizes:
            sizes.append(tokens)
    return sorted(sizes)


def size_label(tokens: int) -> str:
    for suffix, unit in (("m", UNITS["m"]), ("k", UNITS["k"])):
        if tokens >= unit and tokens % unit == 0:
            return f"{tokens // unit}{suffix}"
    return str(tokens)
