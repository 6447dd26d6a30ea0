"""The job's install stays small: only ``.[job]`` in a fresh venv, and its unit tests pass there."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("numpy", "librosa", "faiss", "google.genai", "google.cloud.run_v2")


@pytest.fixture(scope="module")
def job_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the project installed as ``.[job]`` plus pytest."""
    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is not installed (https://docs.astral.sh/uv/)", pytrace=False)
    venv = tmp_path_factory.mktemp("job-venv") / "venv"
    subprocess.run([uv, "venv", "-q", "-p", "3.11", str(venv)], check=True, cwd=ROOT)
    subprocess.run(
        [uv, "pip", "install", "-q", "-p", str(venv / "bin/python"), "-e", ".[job]", "pytest"],
        check=True, cwd=ROOT, timeout=600,
    )  # fmt: skip
    return venv


@pytest.mark.parametrize("module", HEAVY)
def test_heavy_libraries_are_not_installed(job_venv: Path, module: str) -> None:
    """The blueprint consumer's and dispatcher's libraries are absent from the job's install."""
    probe = (
        f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is not None)"
    )
    done = subprocess.run([str(job_venv / "bin/python"), "-c", probe], check=False)
    assert done.returncode == 0, f"{module} is importable in the job's environment"


def test_job_entrypoint_imports_and_its_unit_tests_pass(job_venv: Path) -> None:
    """``job.main`` imports, and tests/unit/test_job_*.py pass, with nothing but ``.[job]``."""
    python = str(job_venv / "bin/python")
    subprocess.run([python, "-c", "import job.main, blobstore.gcs, job.notify"], check=True)
    tests = sorted(str(path) for path in (ROOT / "tests/unit").glob("test_job_*.py"))
    done = subprocess.run(
        # --noconftest: the shared fixtures serve other areas and may import their libraries.
        [python, "-m", "pytest", "-q", "--noconftest", "-p", "no:cacheprovider",
         "-o", "addopts=", *tests],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
