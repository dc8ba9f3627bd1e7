"""The official `rlms` package, driven from its own venv so neither project's dependencies leak
into the other's; its docker REPL gets an image built from Debian packages like the tests' one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.debian_image import build_debian_image, image_exists

VERSION = "0.1.3"
VENV = Path.home() / ".cache" / "langgraph-rlm-bench" / f"rlms-{VERSION}"
DRIVER = Path(__file__).with_name("rlms_driver.py")
# rlms' DockerREPL runs `python`, imports `requests` (and `dill` when present) and `tail -f`s.
IMAGE = "rlms-python3:bookworm"
IMAGE_PACKAGES = ("python3", "python-is-python3", "python3-requests", "python3-dill")


def ensure_venv() -> Path:
    """The venv's python, with rlms installed from PyPI on first use."""
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", f"rlms=={VERSION}"], check=True)
    return python


def ensure_image() -> str:
    if not image_exists(IMAGE):
        build_debian_image(IMAGE, IMAGE_PACKAGES)
    return IMAGE


def command(
    base_url: str,
    context: Path,
    question: str,
    environment: str,
    max_iterations: int,
    batch_concurrency: int = 0,
) -> list[str]:
    args = {
        "base_url": base_url,
        "context": str(context),
        "question": question,
        "environment": environment,
        "image": IMAGE,
        "max_iterations": max_iterations,
        "batch_concurrency": batch_concurrency,
    }
    return [str(ensure_venv()), str(DRIVER), json.dumps(args)]
