"""Docker images built from Debian packages with debootstrap: no registry is reachable here, and a
benchmark comparing sandboxes needs images made the same way as the tests'."""

from __future__ import annotations

import subprocess
import tempfile


def image_exists(tag: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode == 0


def build_debian_image(tag: str, packages: tuple[str, ...] = ("python3",)) -> None:
    """A minimal bookworm root with `packages`, imported as `tag` (needs root and debootstrap)."""
    with tempfile.TemporaryDirectory() as root:
        subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(packages)}",
                "bookworm",
                root,
                "http://deb.debian.org/debian",
            ],
            check=True,
            capture_output=True,
        )
        tar = subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE)
        subprocess.run(["docker", "import", "-", tag], stdin=tar.stdout, check=True, capture_output=True)
        tar.wait()
