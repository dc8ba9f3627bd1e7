"""A bubblewrap that refuses to start gets a fix for what it said, never "install bubblewrap"
(it is installed: it said something)."""

from __future__ import annotations

import subprocess

import pytest

from langgraph_rlm.sandboxes.local import bwrap_fix
from tests.conftest import need_bwrap

NO_NAMESPACES = (
    "bwrap: No permissions to creating new namespace, likely because the kernel does not allow "
    "non-privileged user namespaces. On e.g. debian this can be enabled with "
    "'sysctl kernel.unprivileged_userns_clone=1'."
)
UID_MAP = "bwrap: setting up uid map: Permission denied"


def test_a_missing_bind_source_as_bwrap_says_it_points_at_the_files_and_the_state_dir():
    need_bwrap()
    said = subprocess.run(
        ["bwrap", "--ro-bind", "/nonexistent/rlm-blob", "/x", "true"], capture_output=True, text=True
    ).stderr.strip()
    fix = bwrap_fix(said)
    assert "--state-dir" in fix and "install" not in fix


@pytest.mark.parametrize("said", [NO_NAMESPACES, UID_MAP])
def test_no_user_namespaces_names_the_kernel_settings_and_the_other_sandboxes(said):
    fix = bwrap_fix(said)
    assert "unprivileged_userns_clone" in fix and "--sandbox docker" in fix
    assert "install" not in fix


def test_anything_else_points_at_doctor():
    assert "rlm doctor" in bwrap_fix("bwrap: execvp python3: No such file or directory")
