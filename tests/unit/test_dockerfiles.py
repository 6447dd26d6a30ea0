"""The service Dockerfiles and infra/compose.yaml: real paths, one extra each, non-root."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "infra" / "docker"
COMPOSE = ROOT / "infra" / "compose.yaml"
# Deployable → the one extra its image installs (producer and status need the HTTP entrypoint,
# psycopg and the Pub/Sub/Storage clients: the service extra).
IMAGES = {
    "producer": "service",
    "blueprint": "blueprint",
    "dispatcher": "dispatcher",
    "status": "service",
}
HEAVY_EXTRAS = {"all", "blueprint"}


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per Dockerfile instruction, continuation lines joined."""
    joined = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    found = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def pip_installed_extras(path: Path) -> list[str]:
    """The extras of every ``pip install '.[x]'`` in the file."""
    extras = []
    for keyword, args in instructions(path):
        if keyword == "RUN" and "pip install" in args:
            for word in shlex.split(args):
                if match := re.fullmatch(r"\.\[([\w,-]+)\]", word):
                    extras += match.group(1).split(",")
    return extras


def dockerfile(name: str) -> Path:
    """Path of one deployable's Dockerfile."""
    return DOCKER / f"{name}.Dockerfile"


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_copy_sources_exist(name: str) -> None:
    """Every COPY source is a file or directory in the repository (the build context)."""
    copies = [args for keyword, args in instructions(dockerfile(name)) if keyword == "COPY"]
    assert copies
    for args in copies:
        *sources, _destination = [w for w in shlex.split(args) if not w.startswith("--")]
        for source in sources:
            assert (ROOT / source).exists(), f"{name}: COPY {source} does not exist"


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_installs_only_its_extra(name: str) -> None:
    """Each image pip-installs the project once, with its own extra and nothing heavier."""
    extras = pip_installed_extras(dockerfile(name))
    assert extras == [IMAGES[name]]
    if name != "blueprint":
        assert not set(extras) & HEAVY_EXTRAS


def test_image_extras_exist_in_pyproject() -> None:
    """The extras the images install are declared in pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert set(IMAGES.values()) <= set(project["optional-dependencies"])


# Deployable → the module its image runs (``python -m``): no image carries the command line.
ENTRYPOINTS = {
    "producer": "producers",
    "blueprint": "consumers.blueprint_consumer",
    "dispatcher": "consumers.dispatcher",
    "status": "consumers.status_recorder",
}


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_runs_as_non_root_python_311_and_serves_itself(name: str) -> None:
    """Base python:3.11-slim, a non-root USER before CMD, CMD is `python -m <its package>`."""
    steps = instructions(dockerfile(name))
    keywords = [keyword for keyword, _ in steps]
    assert steps[0] == ("FROM", "python:3.11-slim")
    users = [args for keyword, args in steps if keyword == "USER"]
    assert users and users[-1] not in {"root", "0"}
    assert keywords.index("USER") < keywords.index("CMD")
    assert steps[-1] == ("CMD", f'["python", "-m", "{ENTRYPOINTS[name]}"]')
    assert any(keyword == "ENV" and re.search(r"\bPORT=\d+", args) for keyword, args in steps)


def test_parser_sees_a_forbidden_extra(tmp_path: Path) -> None:
    """The pip-line parser reports `.[all]` across a continuation line, so it cannot slip by."""
    sample = tmp_path / "heavy.Dockerfile"
    sample.write_text("FROM python:3.11-slim\nRUN pip install --no-cache-dir \\\n  '.[all]'\n")
    assert pip_installed_extras(sample) == ["all"]


def test_dockerignore_keeps_local_state_out_but_the_sources_in() -> None:
    """.dockerignore excludes the venv, git and local data, and none of the copied sources."""
    patterns = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", ".choreo", ".env"} <= patterns
    copied = {
        "pyproject.toml",
        "README.md",
        "schemas",
        "lifecycle",
        "blobstore",
        "delivery",
        "choreography",
        "producers",
        "consumers",
        "job",
    }
    assert not copied & patterns


def compose_services() -> dict[str, dict[str, object]]:
    """The services of infra/compose.yaml."""
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"]  # type: ignore[no-any-return]


def test_compose_builds_only_dockerfiles_that_exist() -> None:
    """Every build section points at an existing context and Dockerfile."""
    built = 0
    for name, service in compose_services().items():
        build = service.get("build")
        if build is None:
            continue
        assert isinstance(build, dict)
        context = (COMPOSE.parent / build["context"]).resolve()
        assert context == ROOT, name
        assert (context / build["dockerfile"]).is_file(), f"{name}: {build['dockerfile']}"
        built += 1
    assert built >= len(IMAGES)


def test_compose_runs_setup_before_the_workers() -> None:
    """Migrations and topology run once, and every choreo service waits for them to succeed."""
    services = compose_services()
    assert services["setup"]["command"] == [
        "sh",
        "-c",
        "python -m producers.ops migrate && python -m producers.ops topology",
    ]
    for name in ("producer", "blueprint", "dispatcher", "status"):
        depends = services[name]["depends_on"]
        assert isinstance(depends, dict)
        assert depends["setup"] == {"condition": "service_completed_successfully"}, name
    for name in ("blueprint", "dispatcher", "status"):
        assert services[name]["command"] == ["python", "-m", ENTRYPOINTS[name], "worker"]


def test_compose_uses_the_documented_emulators() -> None:
    """Pub/Sub is the official emulator image and GCS is gcp-storage-emulator."""
    services = compose_services()
    assert services["pubsub"]["image"] == (
        "gcr.io/google.com/cloudsdktool/google-cloud-cli:emulators"
    )
    assert "gcp-storage-emulator start" in str(services["gcs"]["command"])
    assert str(services["postgres"]["image"]).startswith("postgres:15")
