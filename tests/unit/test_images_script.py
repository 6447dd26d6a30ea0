"""infra/local/images.sh refuses a bad invocation with one line naming the problem."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "infra/local/images.sh"


def _run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (["nosuch"], {}, "no image named 'nosuch' (known: job producer status dispatcher"),
        (["--fast"], {}, "unknown option --fast (known: --no-cache)"),
        (["job"], {"CHOREO_IMAGES_DIR": "relative/dir"}, "must be an absolute path"),
    ],
)
def test_bad_invocation_is_one_line(args: list[str], env: dict[str, str], named: str) -> None:
    """Exit 1, one stderr line starting ``images.sh:`` that names the problem, nothing printed."""
    if os.geteuid() != 0 and "CHOREO_IMAGES_DIR" in env:
        named = "needs root"  # the root check comes first
    done = _run(*args, **env)
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("images.sh: ") and named in lines[0], lines


def test_help_names_the_images_and_the_cache_folder() -> None:
    """``--help`` prints the usage from the script's header."""
    done = _run("--help")
    assert done.returncode == 0
    assert "Usage: bash infra/local/images.sh [--no-cache] [NAME...]" in done.stdout
    assert "CHOREO_IMAGES_DIR" in done.stdout
