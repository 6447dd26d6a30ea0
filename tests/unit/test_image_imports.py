"""Each deployable's image copies exactly the packages its deployable imports.

The import graph comes from grimp (import-linter's engine), which reads every import statement,
those inside functions included. An image's entry modules are what it runs: the ``python -m``
of its CMD/ENTRYPOINT and RUN lines, the consumer handler the runtime loads by name
(:data:`consumers.services.SERVICES`), and the few documented extras below. The closure of their
imports, cut into units (a top-level package; ``consumers`` and ``choreography`` by
sub-package), must equal the units the Dockerfile COPYs: one more is a package the deployable does
not import, one fewer an ImportError in production.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from functools import cache
from pathlib import Path

import grimp
import pytest

from consumers.services import SERVICES
from tests.unit.test_dockerfiles import DOCKER, ROOT, instructions

PACKAGES: tuple[str, ...] = tuple(
    tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["hatch"]["build"][
        "targets"
    ]["wheel"]["packages"]
)
SPLIT = ("consumers", "choreography")  # copied sub-package by sub-package
IMAGES = ("producer", "status", "dispatcher", "blueprint", "job")
# Modules an image runs that neither its CMD nor a RUN line names.
EXTRA_ENTRIES = {
    # The Cloud Run migrate and reaper jobs and compose's setup run the operator one-shots in the
    # status image (infra/terraform/run.tf, infra/compose.yaml).
    "status": ["producers.ops"],
    # DISPATCHER_BACKEND=local runs the job as a subprocess: `python -m job`.
    "dispatcher": ["job.__main__"],
}
CONSUMER_OF_IMAGE = {"blueprint": "blueprint", "dispatcher": "dispatcher", "status": "status"}


@cache
def graph() -> grimp.ImportGraph:
    """The import graph of every first-party package."""
    return grimp.build_graph(*PACKAGES)


def unit(module: str) -> str:
    """The copy unit of ``module``: its top-level package, or its sub-package of a split one."""
    parts = module.split(".")
    if parts[0] in SPLIT and len(parts) > 1:
        candidate = ".".join(parts[:2])
        if graph().find_children(candidate):
            return candidate
    return parts[0]


def run_modules(name: str) -> list[str]:
    """The modules an image's Dockerfile runs with ``python -m``."""
    found = []
    for keyword, args in instructions(DOCKER / f"{name}.Dockerfile"):
        words = re.findall(r'"([^"]+)"', args) if args.startswith("[") else shlex.split(args)
        if keyword in {"CMD", "ENTRYPOINT", "RUN"}:
            found += [
                words[i + 1]
                for i, word in enumerate(words[:-1])
                if word == "-m" and words[i + 1].split(".")[0] in PACKAGES
            ]
    return found


def entries(name: str) -> list[str]:
    """Every module the image starts from."""
    modules = []
    for module in run_modules(name):
        main = f"{module}.__main__"
        modules.append(main if graph().find_children(module) or _is_package(module) else module)
    if name in CONSUMER_OF_IMAGE:
        modules.append(SERVICES[CONSUMER_OF_IMAGE[name]].handler.split(":")[0])
    return modules + EXTRA_ENTRIES.get(name, [])


def _is_package(module: str) -> bool:
    return (ROOT / module.replace(".", "/") / "__init__.py").is_file()


def needed_units(name: str) -> set[str]:
    """The units the image's entry modules import, directly or not."""
    modules: set[str] = set()
    for entry in entries(name):
        modules |= {entry, *graph().find_upstream_modules(entry)}
    first_party = {m for m in modules if m.split(".")[0] in PACKAGES}
    # Importing a.b.c runs a/__init__.py and a/b/__init__.py first.
    parents = {".".join(m.split(".")[:i]) for m in first_party for i in range(1, m.count(".") + 1)}
    return {unit(m) for m in first_party | parents}


def copied_units(name: str) -> set[str]:
    """The units the Dockerfile COPYs from the build context (not the pyproject stub)."""
    units = set()
    for keyword, args in instructions(DOCKER / f"{name}.Dockerfile"):
        if keyword != "COPY":
            continue
        *sources, _destination = [w for w in shlex.split(args) if not w.startswith("--")]
        for source in sources:
            path = Path(source)
            if path.parts[0] not in PACKAGES:
                continue
            module = ".".join(path.with_suffix("").parts) if path.suffix == ".py" else source
            units.add(unit(module.removesuffix(".__init__").replace("/", ".")))
    return units


@pytest.mark.parametrize("name", IMAGES)
def test_image_copies_exactly_what_its_deployable_imports(name: str) -> None:
    """COPY lines == the import closure of the image's entry modules, unit by unit."""
    needed, copied = needed_units(name), copied_units(name)
    assert not needed - copied, f"{name}: imported but not copied: {sorted(needed - copied)}"
    assert not copied - needed, f"{name}: copied but never imported: {sorted(copied - needed)}"


@pytest.mark.parametrize("name", IMAGES)
def test_no_image_carries_the_command_line(name: str) -> None:
    """choreo_cli (the CLI, the demo, the local stack) is in no image, nor is the console script."""
    assert "choreo_cli" not in copied_units(name)
    steps = instructions(DOCKER / f"{name}.Dockerfile")
    assert any("pip uninstall -y choreo" in args for keyword, args in steps if keyword == "RUN")


@pytest.mark.parametrize("name", IMAGES)
def test_dependency_stub_names_every_wheel_package(name: str) -> None:
    """The stub that lets pip resolve the extra lists every package pyproject's wheel names."""
    stub = next(
        args
        for keyword, args in instructions(DOCKER / f"{name}.Dockerfile")
        if keyword == "RUN" and "/tmp/stub" in args
    )
    match = re.search(r"for p in ([\w ]+); do", stub)
    assert match, stub
    assert set(match.group(1).split()) == set(PACKAGES)


def test_the_check_sees_a_missing_and_a_surplus_package(tmp_path: Path) -> None:
    """The unit mapping tells sub-packages apart, so a wrong COPY line cannot pass unseen."""
    assert unit("consumers.runtime.handler") == "consumers.runtime"
    assert unit("consumers.services") == "consumers"
    assert unit("choreography.music.analysis") == "choreography.music"
    assert unit("job.main") == "job"
    assert "choreography.music" in needed_units("blueprint")
    assert "choreography.music" not in needed_units("status")
    assert "job" not in needed_units("producer")
