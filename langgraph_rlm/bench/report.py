"""A benchmark's results per size: a table for the terminal, and a chart."""

from __future__ import annotations

import json
from statistics import mean
from typing import Any

from rich.table import Table

from langgraph_rlm.bench.chart import Chart
from langgraph_rlm.bench.sizes import size_label
from langgraph_rlm.graph.config import RLMSettings

TITLES = {"niah": "needle in a haystack (S-NIAH)", "aggregate": "aggregation over every line (OOLONG-like)"}


def summarise(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Means per size; cost is None (unknown) when any run's model is not priced."""
    rows = []
    for tokens in sorted({r["tokens"] for r in results}):
        runs = [r for r in results if r["tokens"] == tokens]
        costs = [r["cost"] for r in runs]
        rows.append(
            {
                "tokens": tokens,
                "runs": len(runs),
                "correct": sum(r["correct"] for r in runs),
                "accuracy": sum(r["correct"] for r in runs) / len(runs),
                "model_tokens": mean(r["input_tokens"] + r["output_tokens"] for r in runs),
                "cost": None if None in costs else mean(costs),
                "seconds": mean(r["seconds"] for r in runs),
                "errors": sum(r["error"] is not None for r in runs),
            }
        )
    return rows


def table(name: str, model: str, rows: list[dict[str, Any]]) -> Table:
    table = Table("context", "runs", "accuracy", "tokens/run", "cost/run", "time/run", "errors")
    table.title, table.title_justify = f"{TITLES[name]} · {model}", "left"
    for row in rows:
        cost = "unknown" if row["cost"] is None else f"${row['cost']:.4f}"
        table.add_row(
            f"{size_label(row['tokens'])} tokens",
            str(row["runs"]),
            f"{row['accuracy']:.0%} ({row['correct']}/{row['runs']})",
            f"{row['model_tokens']:,.0f}",
            cost,
            f"{row['seconds']:.1f}s",
            str(row["errors"]),
        )
    return table


def to_json(
    name: str, seed: int, settings: RLMSettings, rows: list[dict[str, Any]], results: list[dict[str, Any]]
) -> str:
    """Enough to compare models later: what was asked of which model where, every run, every size."""
    report = {
        "task": name,
        "model": str(settings.root_model()),
        "sub_model": str(settings.sub_model),
        "api_base": settings.api_base,
        "sandbox": settings.sandbox,
        "seed": seed,
        "sizes": rows,
        "runs": results,
    }
    return json.dumps(report, indent=2) + "\n"


def plot(rows: list[dict[str, Any]]) -> bytes:
    """Accuracy and model tokens per run against the context's size, as a PNG."""
    chart = Chart(width=640, height=480)
    sizes = [row["tokens"] for row in rows]
    chart.panel(0, "ACCURACY %", sizes, [row["accuracy"] * 100 for row in rows], top=100)
    tokens = [row["model_tokens"] for row in rows]
    chart.panel(1, "MODEL TOKENS PER RUN", sizes, tokens, top=max(tokens, default=0))
    chart.text(chart.width - 260, chart.height - 14, "CONTEXT TOKENS - LOG SCALE")
    return chart.png()
