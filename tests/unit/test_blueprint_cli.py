"""`choreo blueprint validate` and `choreo blueprint schema` through the real Typer app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from choreo_cli.main import app
from schemas.blueprint import MAX_BLUEPRINT_BYTES, Blueprint

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
SONG_EXAMPLE = EXAMPLES / "blueprint-song.json"


@pytest.fixture
def runner() -> CliRunner:
    """A CliRunner that keeps stdout and stderr apart."""
    return CliRunner()


def _write(tmp_path: Path, document: object | str) -> Path:
    path = tmp_path / "blueprint.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return path


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("blueprint-*.json")), ids=lambda p: p.name)
def test_valid_blueprint_exits_0_with_a_one_line_summary(runner: CliRunner, example: Path) -> None:
    """A valid file exits 0 and prints one summary line naming the task."""
    result = runner.invoke(app, ["blueprint", "validate", str(example)])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    task_id = json.loads(example.read_text())["task_id"]
    assert f"valid: task {task_id}" in lines[0]
    assert result.stderr == ""


def test_invalid_blueprint_exits_2_with_one_line_per_problem(
    runner: CliRunner, tmp_path: Path
) -> None:
    """Each problem is one stderr line starting with its field path; nothing on stdout."""
    document = json.loads(SONG_EXAMPLE.read_text())
    document["task_id"] = "../escape"
    document["moves_used"][3]["clip_uri"] = "%2e%2e/%2e%2e/etc/passwd"
    document["moves_used"][1]["speed_factor"] = 2.0
    result = runner.invoke(app, ["blueprint", "validate", str(_write(tmp_path, document))])
    assert result.exit_code == 2
    assert result.stdout == ""
    paths = [line.split(": ", 1)[0] for line in result.stderr.splitlines()]
    assert paths == ["task_id", "moves_used[1].speed_factor", "moves_used[3].clip_uri"]


def test_storage_root_option_checks_symlinks(runner: CliRunner, tmp_path: Path) -> None:
    """--storage-root makes the CLI reject a clip key whose symlink escapes the root."""
    root, outside = tmp_path / "storage", tmp_path / "outside"
    (root / "moves").mkdir(parents=True)
    outside.mkdir()
    (root / "moves" / "hiphop").symlink_to(outside, target_is_directory=True)
    path = SONG_EXAMPLE
    result = runner.invoke(app, ["blueprint", "validate", str(path), "--storage-root", str(root)])
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert lines
    assert all(line.endswith(".clip_uri: path escapes the storage root") for line in lines)


def test_allowed_bucket_option_restricts_gs_uris(runner: CliRunner) -> None:
    """--allowed-bucket rejects gs:// URIs in other buckets."""
    example = EXAMPLES / "blueprint-describe.json"
    args = ["blueprint", "validate", str(example), "--allowed-bucket", "choreo-songs"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "video_output.uri: bucket 'choreo-videos' is not allowed" in result.stderr
    allow_all = [*args, "--allowed-bucket", "choreo-moves", "--allowed-bucket", "choreo-videos"]
    assert runner.invoke(app, allow_all).exit_code == 0


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "cannot read"),
        ("{not json", "$: not valid JSON"),
        ("[]", "$: expected a JSON object, got array"),
        (" " * (MAX_BLUEPRINT_BYTES + 10), "$: document is"),
    ],
    ids=["missing-file", "bad-json", "not-an-object", "oversized"],
)
def test_unreadable_input_exits_2_with_one_clear_line(
    runner: CliRunner, tmp_path: Path, content: str | None, expected: str
) -> None:
    """A missing file, broken JSON or oversized file is exit 2 with one stderr line."""
    path = tmp_path / "missing.json" if content is None else _write(tmp_path, content)
    result = runner.invoke(app, ["blueprint", "validate", str(path)])
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert expected in line


def test_schema_command_prints_the_json_schema(runner: CliRunner) -> None:
    """`choreo blueprint schema` prints exactly Blueprint.model_json_schema() as JSON."""
    result = runner.invoke(app, ["blueprint", "schema"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == Blueprint.model_json_schema()
