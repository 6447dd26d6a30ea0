"""Static checks of infra/terraform with a real HCL parser (python-hcl2), no provider needed.

``terraform validate`` needs the google provider plugin, which cannot be downloaded here; these
tests catch what it would catch first: undeclared variables, locals and resources, undocumented
variables and outputs, and settings the code does not read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
import pytest

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "infra" / "terraform"
EXPECTED_FILES = (
    "providers.tf",
    "main.tf",
    "variables.tf",
    "outputs.tf",
    "pubsub.tf",
    "run.tf",
    "eventarc.tf",
    "iam.tf",
    "storage.tf",
    "sql.tf",
    "secrets.tf",
)
# Keys whose values are prose, never expressions.
PROSE_KEYS = {"description", "error_message", "title", "display_name"}
# Block types that declare something referable as <type>.<name>.
REFERABLE_PREFIXES = ("google_", "random_", "terraform_data")
# Environment variables the Terraform sets that are not choreo settings in .env.example, and why.
NON_SETTING_ENV = {
    "PGPASSWORD": "libpq reads the password from it, so DATABASE_URL carries no secret",
    "VIDEO_JOB_NAME": "the dispatcher's job name; its setting is not in schemas/settings.py yet",
}


def unquote(text: str) -> str:
    """A block label or string literal as python-hcl2 returns it, without its quotes."""
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


@cache
def parsed(name: str) -> dict[str, Any]:
    """One .tf file, parsed."""
    with (TERRAFORM / name).open(encoding="utf-8") as handle:
        return hcl2.load(handle)  # type: ignore[no-any-return]


def tf_files() -> list[str]:
    """Every .tf file in the module, sorted."""
    return sorted(p.name for p in TERRAFORM.glob("*.tf"))


def blocks(kind: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(type, name, body) of every labelled block of ``kind`` (resource, data, ...) in any file."""
    for name in tf_files():
        for group in parsed(name).get(kind, []):
            for block_type, by_name in group.items():
                for block_name, body in by_name.items():
                    yield unquote(block_type), unquote(block_name), body


def single_label_blocks(kind: str) -> dict[str, dict[str, Any]]:
    """Name → body of every one-label block of ``kind`` (variable, output)."""
    found: dict[str, dict[str, Any]] = {}
    for name in tf_files():
        for group in parsed(name).get(kind, []):
            for label, body in group.items():
                found[unquote(label)] = body
    return found


def declared_locals() -> set[str]:
    """Names assigned in every ``locals`` block."""
    names: set[str] = set()
    for name in tf_files():
        for group in parsed(name).get("locals", []):
            names |= {k for k in group if not k.startswith("__")}
    return names


def expressions(node: Any, key: str = "") -> Iterator[str]:
    """Every string below ``node`` that is not prose (descriptions and messages are skipped)."""
    if key in PROSE_KEYS:
        return
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for k, v in node.items():
            if not k.startswith("__"):
                yield from expressions(v, k)
    elif isinstance(node, list):
        for item in node:
            yield from expressions(item, key)


def all_expressions() -> list[str]:
    """Every non-prose string in the module."""
    return [e for name in tf_files() for e in expressions(parsed(name))]


def references(pattern: str) -> set[str]:
    """Every match of ``pattern`` (one group) in the module's expressions."""
    regex = re.compile(pattern)
    return {m.group(1) for e in all_expressions() for m in regex.finditer(e)}


def test_module_is_split_into_the_expected_files() -> None:
    """Every file the layout promises exists and parses."""
    missing = [name for name in EXPECTED_FILES if not (TERRAFORM / name).is_file()]
    assert not missing
    for name in tf_files():
        assert isinstance(parsed(name), dict)


def test_every_referenced_variable_is_declared() -> None:
    """A ``var.x`` with no ``variable "x"`` block is reported."""
    used = references(r"(?<![\w.])var\.(\w+)")
    declared = set(single_label_blocks("variable"))
    assert used - declared == set()


def test_every_declared_variable_is_used() -> None:
    """A variable nothing reads is a knob that pretends to work."""
    used = references(r"(?<![\w.])var\.(\w+)")
    assert set(single_label_blocks("variable")) - used == set()


def test_every_referenced_local_is_defined() -> None:
    """A ``local.x`` with no assignment in a locals block is reported."""
    assert references(r"(?<![\w.])local\.(\w+)") - declared_locals() == set()


def test_every_resource_reference_points_at_a_declared_block() -> None:
    """``google_x.y``, ``data.t.n`` and ``ephemeral.t.n`` name blocks that exist."""
    resources = {f"{t}.{n}" for t, n, _ in blocks("resource")}
    data = {f"data.{t}.{n}" for t, n, _ in blocks("data")}
    ephemeral = {f"ephemeral.{t}.{n}" for t, n, _ in blocks("ephemeral")}
    prefixes = "|".join(re.escape(p) for p in REFERABLE_PREFIXES)
    used_resources = references(rf"(?<![\w.])((?:{prefixes})\w*\.\w+)")
    used_data = references(r"(?<![\w.])(data\.\w+\.\w+)")
    used_ephemeral = references(r"(?<![\w.])(ephemeral\.\w+\.\w+)")
    assert len(used_resources) > 20, "the scan found almost no references: it is broken"
    assert used_resources - resources == set()
    assert used_data - data == set()
    assert used_ephemeral - ephemeral == set()


def test_reference_checks_catch_an_undeclared_name() -> None:
    """The reference regex finds names inside interpolations, so a typo cannot slip past."""
    regex = re.compile(r"(?<![\w.])var\.(\w+)")
    assert regex.findall('"${var.projct_id}-x"') == ["projct_id"]
    assert regex.findall("${each.value.var.x}") == []


@pytest.mark.parametrize("kind", ["variable", "output"])
def test_every_variable_and_output_has_a_description(kind: str) -> None:
    """Each variable and output says what it is for."""
    undocumented = [
        name
        for name, body in single_label_blocks(kind).items()
        if len(unquote(str(body.get("description", ""))).strip()) < 10
    ]
    assert undocumented == []


def test_every_variable_declares_a_type() -> None:
    """Typed variables fail at plan time instead of deep inside a resource."""
    assert [n for n, b in single_label_blocks("variable").items() if "type" not in b] == []


def test_tfvars_example_sets_every_required_variable_and_nothing_undeclared() -> None:
    """The example tfvars is a working starting point for ``terraform apply``."""
    example = hcl2.loads((TERRAFORM / "terraform.tfvars.example").read_text(encoding="utf-8"))
    variables = single_label_blocks("variable")
    required = {name for name, body in variables.items() if "default" not in body}
    example = {k: v for k, v in example.items() if not k.startswith("__")}
    assert set(example) - set(variables) == set()
    assert required - set(example) == set()


def test_video_job_matches_the_seed_limits() -> None:
    """The video job defaults to 512 MiB, 1 CPU, a 5-minute timeout and bounded retries."""
    variables = single_label_blocks("variable")
    assert unquote(variables["job_memory"]["default"]) == "512Mi"
    assert unquote(variables["job_cpu"]["default"]) == "1"
    assert variables["job_timeout_s"]["default"] == 300
    assert 0 <= variables["job_max_retries"]["default"] <= 3
    (job,) = [
        body for t, n, body in blocks("resource") if (t, n) == ("google_cloud_run_v2_job", "video")
    ]
    task = job["template"][0]["template"][0]
    assert task["max_retries"] == "${var.job_max_retries}"
    assert task["timeout"] == '"${var.job_timeout_s}s"'


def test_no_secret_value_is_written_to_state() -> None:
    """Passwords and keys go only to write-only arguments; the Gemini secret has no version."""
    for resource_type, _, body in blocks("resource"):
        assert "password" not in body, resource_type
        assert "secret_data" not in body, resource_type
    versions = [n for t, n, _ in blocks("resource") if t == "google_secret_manager_secret_version"]
    assert versions == ["db_password"]


def test_no_primitive_project_roles_are_granted() -> None:
    """No identity gets owner, editor or viewer on the project."""
    roles = references(r'"?(roles/\w+(?:\.\w+)?)"?')
    assert roles & {"roles/owner", "roles/editor", "roles/viewer"} == set()


def test_environment_names_are_settings_the_code_reads() -> None:
    """Every env var the Terraform sets is in .env.example or explained in NON_SETTING_ENV."""
    env_example = (ROOT / ".env.example").read_text(encoding="utf-8")
    settings = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", env_example, flags=re.MULTILINE))
    set_by_terraform: set[str] = set()
    env_locals = {"common_env", "service_env", "job_env"}
    for name in ("main.tf", "run.tf"):
        for group in parsed(name).get("locals", []):
            for local_name in env_locals & set(group):
                value = group[local_name]
                # A literal map parses to a dict; a merge(...) call stays one expression string.
                set_by_terraform |= {k for k in value if isinstance(value, dict)}
                set_by_terraform |= set(re.findall(r"\b([A-Z][A-Z0-9_]{3,})\s*=", str(value)))
        text = (TERRAFORM / name).read_text(encoding="utf-8")
        set_by_terraform |= set(re.findall(r'name\s*=\s*"([A-Z][A-Z0-9_]+)"', text))
    assert {"DATABASE_URL", "SONGS_BUCKET", "PGPASSWORD"} <= set_by_terraform, "scan is broken"
    assert set_by_terraform - settings - set(NON_SETTING_ENV) == set()
