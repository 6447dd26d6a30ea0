"""The container images, built by ``infra/local/images.sh``, started and used through buildah.

Each image runs what its ENTRYPOINT/CMD says (a service answers ``/healthz`` on the host's
network; the job renders a blueprint from a mounted folder), holds no package its deployable does
not import, and the blueprint image's numba cache is warm. The images are built before pytest
(``infra/local/test.sh``), never here; see ``tests/fixtures/images.py`` for skip and fail.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import signal
import subprocess
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.fixtures.blueprints import TEST_CLIPS, MovePlan, build_blueprint
from tests.fixtures.images import Container, open_container
from tests.fixtures.messaging import answers_health, free_port
from tests.fixtures.stack import require_env
from tests.unit.test_dockerfiles import ROOT
from tests.unit.test_image_imports import IMAGES, PACKAGES, entries, graph

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SERVICES = ("producer", "status", "dispatcher", "blueprint")
# The blueprint consumer's and dispatcher's libraries, as import names and as distributions.
HEAVY_MODULES = ("numpy", "librosa", "faiss", "google.genai", "google.cloud.run_v2")
HEAVY_DISTRIBUTIONS = {"numpy", "librosa", "faiss-cpu", "google-genai", "google-cloud-run"}
# The base image's own tools (python:3.11-slim has them too), not the deployable's.
BASE_TOOLS = {"pip", "setuptools", "wheel"}
# Runs inside an image: every installed distribution, the modules its files provide and what it
# requires (unevaluated; the markers are evaluated here, on the same Python and platform).
PROBE = """
import json
from importlib.metadata import distributions
out = []
for dist in distributions():
    modules = set()
    for file in dist.files or ():
        parts = file.parts
        if not parts or parts[0].endswith(('.dist-info', '.egg-info')) or '..' in parts:
            continue
        if file.suffix in ('.py', '.so'):
            stem = parts[-1].split('.')[0]
            path = parts[:-1] if stem == '__init__' else [*parts[:-1], stem]
            modules.add('.'.join(path))
    out.append({'name': dist.metadata['Name'], 'modules': sorted(modules),
                'requires': dist.requires or []})
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def containers() -> Iterator[dict[str, Container]]:
    """One working container per image, opened on first use and removed at the end."""
    opened: dict[str, Container] = {}
    yield opened
    for container in opened.values():
        container.remove()


def _container(containers: dict[str, Container], name: str) -> Container:
    if name not in containers:
        containers[name] = open_container(name)
    return containers[name]


@pytest.mark.parametrize("name", SERVICES)
def test_service_image_starts_its_command_and_answers_health(
    containers: dict[str, Container], name: str, tmp_path: Path
) -> None:
    """The image's CMD, started by buildah on the local stack, serves /healthz on PORT."""
    container = _container(containers, name)
    port = free_port()
    env = {
        "PORT": str(port),
        "HTTP_HOST": "127.0.0.1",
        "PUSH_AUTH_ENABLED": "false",
        "DATABASE_URL": require_env("DATABASE_URL"),
        "PUBSUB_EMULATOR_HOST": require_env("PUBSUB_EMULATOR_HOST"),
        "PUBSUB_PROJECT_ID": os.environ.get("PUBSUB_PROJECT_ID", "choreo-local"),
        "DISPATCHER_BACKEND": "local",
        "STORAGE_EMULATOR_HOST": require_env("STORAGE_EMULATOR_HOST"),
        "STORAGE_BACKEND": "local",
        "STORAGE_ROOT": "/tmp/storage",
    }
    command = container.command()
    assert command and command[:2] == ["python", "-m"], command
    log = tmp_path / f"{name}.log"
    # Its own session, so the whole process group (buildah and the service) can be stopped.
    with log.open("wb") as output:
        process = subprocess.Popen(
            container.run_args(command, env),
            stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        healthy = answers_health(port, process, timeout_s=120.0)
        assert healthy, f"{name}: no answer on /healthz: {log.read_text()[-3000:]}"
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group buildah runs in, SIGKILL if it is still there after 30 s."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_job_image_without_a_blueprint_names_what_is_missing(
    containers: dict[str, Container],
) -> None:
    """The job image's ENTRYPOINT starts ``python -m job``, which refuses to run without input."""
    container = _container(containers, "job")
    assert container.command() == ["python", "-m", "job"]
    done = container.run(container.command(), env={"STORAGE_BACKEND": "local"}, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "no blueprint: set BLUEPRINT_JSON or BLUEPRINT_URI" in done.stdout + done.stderr


def test_job_image_renders_a_blueprint_from_a_mounted_folder(
    containers: dict[str, Container], job_media: Path, tmp_path: Path
) -> None:
    """Song and clips in a mounted folder, STORAGE_BACKEND=local: the container writes the video."""
    container = _container(containers, "job")
    data = tmp_path / "data"
    shutil.copytree(job_media, data)
    for path in [data, *data.rglob("*")]:  # the image runs as its own user (uid 10001)
        path.chmod(0o777 if path.is_dir() else 0o666)
    moves = [MovePlan(TEST_CLIPS[i].key, mirror=i == 1) for i in range(4)]
    blueprint = build_blueprint(moves, task_id="task-image", move_names=True, count_numbers=True)
    env = {
        "BLUEPRINT_JSON": json.dumps(blueprint),
        "STORAGE_BACKEND": "local",
        "STORAGE_ROOT": "/data",
        "LOG_JSON": "true",
    }
    done = container.run(container.command(), env=env, volumes={data: "/data"}, timeout=300)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    video = data / "videos/task-image.mp4"
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries",
         "format=duration:stream=codec_type,codec_name,width,height", "-of", "json", str(video)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    info = json.loads(probe.stdout)
    streams = {stream["codec_type"]: stream for stream in info["streams"]}
    assert streams["video"]["codec_name"] == "h264"
    assert (streams["video"]["width"], streams["video"]["height"]) == (640, 360)
    assert streams["audio"]["codec_name"] == "aac"
    window = blueprint["song"]["window"]
    assert float(info["format"]["duration"]) == pytest.approx(
        window["end_s"] - window["start_s"], abs=0.1
    )


def test_job_image_holds_none_of_the_heavy_libraries(containers: dict[str, Container]) -> None:
    """numpy, librosa, faiss, google-genai, google-cloud-run: neither installed nor importable."""
    container = _container(containers, "job")
    installed = _installed(container)
    assert not HEAVY_DISTRIBUTIONS & set(installed), sorted(HEAVY_DISTRIBUTIONS & set(installed))
    probe = (
        "import importlib.util as u; "
        f"print([m for m in {HEAVY_MODULES!r} if u.find_spec(m.split('.')[0]) and u.find_spec(m)])"
    )
    done = container.run(["python", "-c", probe], timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# What apt downloads or caches to install a package; debian-slim's apt clean-up removes it.
APT_LEFTOVERS = (
    "import glob; "
    "print(glob.glob('/var/cache/apt/archives/*.deb') + glob.glob('/var/cache/apt/*.bin'))"
)


@pytest.mark.parametrize("name", IMAGES)
def test_image_keeps_no_downloaded_debian_packages(
    containers: dict[str, Container], name: str
) -> None:
    """No .deb nor apt package cache is left in an image (they were 202 MB of the job image)."""
    done = _container(containers, name).run(["python", "-c", APT_LEFTOVERS], timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def _installed(container: Container) -> dict[str, dict[str, Any]]:
    done = container.run(["python", "-c", PROBE], timeout=120)
    assert done.returncode == 0, done.stderr
    return {canonicalize_name(d["name"]): d for d in json.loads(done.stdout)}


def imported_names(name: str) -> set[str]:
    """Every external module name the image's entry modules import, directly or not.

    ``from google.cloud import storage`` counts as ``google.cloud`` and ``google.cloud.storage``:
    grimp folds a namespace package into ``google``, so the statements are read here.
    """
    modules: set[str] = set()
    for entry in entries(name):
        modules |= {entry, *graph().find_upstream_modules(entry)}
    names: set[str] = set()
    for module in modules:
        base = ROOT / module.replace(".", "/")
        path = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
    return {n for n in names if n.split(".")[0] not in PACKAGES}


def requested_extras() -> dict[str, set[str]]:
    """The extras pyproject asks of each dependency (``psycopg[binary]``: binary)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    lines = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        lines += extra
    extras: dict[str, set[str]] = {}
    for line in lines:
        requirement = Requirement(line)
        extras.setdefault(canonicalize_name(requirement.name), set()).update(requirement.extras)
    return extras


def needed_distributions(installed: dict[str, dict[str, Any]], imported: set[str]) -> set[str]:
    """The distributions that provide an imported module, and everything they require."""
    extras = requested_extras()
    queue = [
        (name, frozenset(extras.get(name, set())))
        for name, dist in installed.items()
        if imported & set(dist["modules"])
    ]
    needed: set[str] = set()
    seen: set[tuple[str, frozenset[str]]] = set()
    while queue:
        name, wanted = queue.pop()
        if (name, wanted) in seen or name not in installed:
            continue
        seen.add((name, wanted))
        needed.add(name)
        for line in installed[name]["requires"]:
            requirement = Requirement(line)
            marker: Marker | None = requirement.marker
            if marker is None or any(marker.evaluate({"extra": e}) for e in {"", *wanted}):
                queue.append((canonicalize_name(requirement.name), frozenset(requirement.extras)))
    return needed


@pytest.mark.parametrize("name", IMAGES)
def test_image_holds_only_packages_its_deployable_imports(
    containers: dict[str, Container], name: str
) -> None:
    """Every installed distribution is imported by the deployable, or required by one that is."""
    installed = _installed(_container(containers, name))
    surplus = set(installed) - needed_distributions(installed, imported_names(name)) - BASE_TOOLS
    assert not surplus, f"{name} holds packages it never imports: {sorted(surplus)}"


def test_the_package_check_sees_a_surplus() -> None:
    """A distribution nothing imports or requires is surplus; a required one is not."""
    installed = {
        "pydantic": {"modules": ["pydantic"], "requires": ["pydantic-core==2.*"]},
        "pydantic-core": {"modules": ["pydantic_core"], "requires": []},
        "typer": {"modules": ["typer"], "requires": []},
        "psycopg": {"modules": ["psycopg"], "requires": ['psycopg-binary; extra == "binary"']},
        "psycopg-binary": {"modules": ["psycopg_binary"], "requires": []},
    }
    needed = needed_distributions(installed, {"pydantic", "psycopg"})
    assert needed == {"pydantic", "pydantic-core", "psycopg", "psycopg-binary"}
    assert "google.cloud.storage" in imported_names("job")
    assert not any(n.startswith("typer") for n in imported_names("job"))


def test_blueprint_image_numba_cache_is_warm(containers: dict[str, Container]) -> None:
    """A fresh container's first analysis loads librosa's compiled code and compiles nothing.

    numba (``NUMBA_DEBUG_CACHE``) reports each function it loads from the cache and each one it
    has to compile and save. The time from starting the container to the analysis is printed
    (``-s``); bench/image_render.py measures it against a cold cache.
    """
    container = _container(containers, "blueprint")
    started = time.monotonic()
    done = container.run(
        ["python", "-m", "consumers.blueprint_consumer.warmup"],
        env={"NUMBA_DEBUG_CACHE": "1"},
        timeout=600,
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    saved = [line for line in lines if "data saved to" in line or "index saved to" in line]
    loaded = [line for line in lines if "data loaded from" in line]
    assert loaded, done.stdout[-2000:]
    assert not saved, f"{len(saved)} functions compiled in a fresh container: {saved[:3]}"
    print(f"blueprint image: container start -> first analysis {elapsed:.1f} s; {lines[-1]}")
