"""config/overlord.toml and README's settings table say what the code's defaults are."""

from __future__ import annotations

from pathlib import Path

from overlord.config import (
    Settings,
    load_settings,
    settings_reference_markdown,
    settings_reference_toml,
)

ROOT = Path(__file__).resolve().parents[2]


def test_example_config_matches_generated_reference() -> None:
    assert (ROOT / "config" / "overlord.toml").read_text() == settings_reference_toml()


def test_example_config_loads_to_the_defaults() -> None:
    assert load_settings({}, ROOT / "config" / "overlord.toml") == Settings()


def test_readme_settings_table_matches_generated_reference() -> None:
    assert settings_reference_markdown() in (ROOT / "README.md").read_text()
