"""The JSON Schema files under schemas/json/ are what the models produce today."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from schemas.json_export import JSON_DIR, export, exported_models, render


@pytest.mark.parametrize(("name", "model"), sorted(exported_models().items()))
def test_committed_schema_is_current(name: str, model: type[BaseModel]) -> None:
    """A committed schema file equals the model's schema (run `python -m schemas.json_export`)."""
    path = JSON_DIR / name
    assert path.exists(), f"{name} is missing: run `python -m schemas.json_export`"
    assert path.read_text(encoding="utf-8") == render(model), (
        f"{name} is stale: run `python -m schemas.json_export` and commit the result"
    )


def test_no_stray_schema_files() -> None:
    """Every file in schemas/json/ belongs to an exported model (none left from a removed one)."""
    present = {p.name for p in JSON_DIR.glob("*.json")}
    assert present == set(exported_models())


def test_export_rewrites_a_changed_file(tmp_path) -> None:
    """Exporting into a directory with an edited and a stale file restores and prunes them."""
    export(tmp_path)
    edited = tmp_path / "blueprint.v1.schema.json"
    edited.write_text("{}")
    (tmp_path / "old.schema.json").write_text("{}")
    export(tmp_path)
    assert json.loads(edited.read_text())["title"] == "Blueprint"
    assert not (tmp_path / "old.schema.json").exists()
