"""Settings: every environment variable is documented in .env.example with its default."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from schemas import settings as settings_module

ROOT = Path(__file__).resolve().parents[2]


def _groups() -> list[type[BaseSettings]]:
    return [
        obj
        for obj in vars(settings_module).values()
        if isinstance(obj, type)
        and issubclass(obj, BaseSettings)
        and not obj.__name__.startswith("_")
    ]


def _documented() -> dict[str, str]:
    text = (ROOT / ".env.example").read_text()
    return dict(re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", text, flags=re.MULTILINE))


def _env_names(group: type[BaseSettings]) -> list[tuple[str, object]]:
    out = []
    for field in group.model_fields.values():
        alias = field.validation_alias
        name = alias.choices[0] if isinstance(alias, AliasChoices) else alias
        assert isinstance(name, str), f"{group.__name__} has a field without an env name"
        out.append((name, field.default))
    return out


@pytest.mark.parametrize("group", _groups(), ids=lambda g: g.__name__)
def test_every_setting_is_in_env_example_with_its_default(group: type[BaseSettings]) -> None:
    """Each settings field has an environment variable listed in .env.example with its default."""
    documented = _documented()
    for name, default in _env_names(group):
        assert name in documented, f"{name} ({group.__name__}) is missing from .env.example"
        shown = documented[name]
        expected = "" if default is None else str(default)
        if isinstance(default, bool):
            expected = str(default).lower()
        assert shown == expected, f"{name}: .env.example says {shown!r}, code default {expected!r}"


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A variable set in the environment overrides the default, under its documented name."""
    monkeypatch.setenv("DB_POOL_MAX_SIZE", "9")
    monkeypatch.delenv("PUBSUB_PROJECT_ID", raising=False)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "from-gcp")
    assert settings_module.DatabaseSettings().pool_max_size == 9
    assert settings_module.PubSubSettings().project_id == "from-gcp"


def test_readme_lists_every_variable() -> None:
    """The README's configuration reference names every variable of .env.example."""
    readme = (ROOT / "README.md").read_text()
    missing = [name for name in _documented() if f"`{name}`" not in readme]
    assert not missing, f"README.md does not list {missing}"


@pytest.mark.parametrize("size", ["1280x720", "640x360", "144x4096"])
def test_a_demo_video_size_is_read_as_width_and_height(
    monkeypatch: pytest.MonkeyPatch, size: str
) -> None:
    monkeypatch.setenv("DEMO_VIDEO_SIZE", size)
    width, height = (int(side) for side in size.split("x"))
    assert settings_module.DemoSettings().video_width_height == (width, height)


@pytest.mark.parametrize("size", ["big", "1280", "641x360", "100x100", "8192x720", "0x720"])
def test_a_bad_demo_video_size_is_refused_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, size: str
) -> None:
    monkeypatch.setenv("DEMO_VIDEO_SIZE", size)
    with pytest.raises(ValueError, match="DEMO_VIDEO_SIZE"):
        settings_module.DemoSettings()
