"""docs/settings.md is generated from the Settings class and kept equal to it."""

from config.settings import Settings
from config.settings_doc import DOC, render


def test_settings_document_is_up_to_date() -> None:
    """docs/settings.md equals what `python -m config.settings_doc` writes now."""
    assert DOC.read_text() == render(), "run: .venv/bin/python -m config.settings_doc"


def test_every_setting_has_a_row_with_a_meaning() -> None:
    """One row per setting (test seams aside), each with a description."""
    rows = [line for line in render().splitlines() if line.startswith("| `TICKLAKE_")]
    names = [n for n in Settings.model_fields if not n.startswith("fault_")]
    assert [r.split("`")[1] for r in rows] == [f"TICKLAKE_{n.upper()}" for n in names]
    assert all(not r.endswith("|  |") for r in rows)
