"""Export the JSON Schemas of the blueprint and the event payloads into ``schemas/json/``.

Run ``python -m schemas.json_export`` after changing a contract; a test fails while the committed
files differ from what the models produce.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pydantic import BaseModel

from schemas.blueprint import Blueprint
from schemas.events import EVENT_SPECS

JSON_DIR = Path(__file__).resolve().parent / "json"


def exported_models() -> dict[str, type[BaseModel]]:
    """File name → model, for every contract published as JSON Schema."""
    models: dict[str, type[BaseModel]] = {"blueprint.v1.schema.json": Blueprint}
    for spec in EVENT_SPECS.values():
        models[f"{spec.type}.schema.json"] = spec.payload
    return models


def render(model: type[BaseModel]) -> str:
    """The model's JSON Schema as stable, diff-friendly text."""
    return json.dumps(model.model_json_schema(), indent=2, sort_keys=True) + "\n"


def export(directory: Path = JSON_DIR) -> list[Path]:
    """Write every schema file and remove stale ones; returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    wanted = exported_models()
    for stale in directory.glob("*.schema.json"):
        if stale.name not in wanted:
            stale.unlink()
    written = []
    for name, model in wanted.items():
        path = directory / name
        path.write_text(render(model), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in export():
        sys.stdout.write(f"wrote {path}\n")
