"""litellm's table of model prices and windows, read as data: importing litellm takes seconds,
and reading the table it ships takes milliseconds."""

from __future__ import annotations

import functools
import importlib.util
import json
from pathlib import Path
from typing import Any

TABLE_FILE = "model_prices_and_context_window_backup.json"


@functools.cache
def table() -> dict[str, dict[str, Any]]:
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return {}
    try:
        return json.loads((Path(spec.submodule_search_locations[0]) / TABLE_FILE).read_text())
    except (OSError, ValueError):
        return {}


def model_info(model: str | None) -> dict[str, Any] | None:
    """The entry for a litellm model string, with or without its provider prefix."""
    if not model:
        return None
    entries = table()
    for key in (model, model.split("/", 1)[-1]):
        if key != "sample_spec" and isinstance(entries.get(key), dict):
            return entries[key]
    return None


def unit_prices(model: str | None) -> tuple[float, float] | None:
    """Dollars per input and per output token; None when the table has no price."""
    info = model_info(model)
    if not info or "input_cost_per_token" not in info:
        return None
    return float(info["input_cost_per_token"]), float(info.get("output_cost_per_token") or 0.0)


def input_window(model: str | None) -> int | None:
    info = model_info(model) or {}
    return info.get("max_input_tokens") or info.get("max_tokens")
