"""docs/settings.md, generated from :class:`config.settings.Settings` (one row per setting: its
environment variable, default, allowed values and description).

    python -m config.settings_doc            # rewrite docs/settings.md
    python -m config.settings_doc --check    # exit 1 when docs/settings.md is out of date

``tests/unit/test_settings_doc.py`` fails when the file and the class disagree.
"""

from __future__ import annotations

import argparse
import sys
import typing
from pathlib import Path
from typing import Any

from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from pydantic.fields import FieldInfo

from config.settings import Settings

DOC = Path(__file__).resolve().parents[1] / "docs" / "settings.md"
MACHINE_DEFAULTS = {
    "jars_dir": "`.jars/` in the repository",
    "pyspark_python": "the Python that runs ticklake",
}
"""Defaults that depend on the machine, in words."""

HEADER = """# Settings

Generated from `config/settings.py` by `python -m config.settings_doc` (a test keeps the two
equal). Every setting is an environment variable with the prefix `TICKLAKE_`; CLI flags
override the environment (`ticklake VERB --help`). A value outside its allowed range stops the
command with one line naming the setting, the value and the range. Lists are comma- or
space-separated. Secrets (`TICKLAKE_KAFKA_SASL_PASSWORD`, `TICKLAKE_API_KEY`) have no default
and are never logged.

| variable | default | allowed | meaning |
| --- | --- | --- | --- |
"""


def _default(name: str, field: FieldInfo) -> str:
    if name in MACHINE_DEFAULTS:
        return MACHINE_DEFAULTS[name]
    value = field.default
    if value is None:
        return "-"
    if isinstance(value, tuple):
        return "`" + ",".join(str(v) for v in value) + "`"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    return f"`{value}`"


def _allowed(field: FieldInfo) -> str:
    out = []
    literal = _literals(field.annotation)
    if literal:
        out.append(", ".join(f"`{v}`" for v in literal))
    for meta in field.metadata:
        if isinstance(meta, Ge):
            out.append(f">= {meta.ge:,}")
        elif isinstance(meta, Gt):
            out.append(f"> {meta.gt:,}")
        elif isinstance(meta, Le):
            out.append(f"<= {meta.le:,}")
        elif isinstance(meta, Lt):
            out.append(f"< {meta.lt:,}")
        elif isinstance(meta, MinLen):
            out.append(f"at least {meta.min_length}" + (" characters" if _is_text(field)
                                                         else " values"))
        elif isinstance(meta, MaxLen):
            out.append(f"at most {meta.max_length} values")
        elif hasattr(meta, "pattern") and getattr(meta, "pattern", None):
            out.append(f"`{meta.pattern}`".replace("|", "\\|"))
    return "; ".join(out) or "-"


def _literals(annotation: Any) -> list[Any]:
    if typing.get_origin(annotation) is typing.Literal:
        return list(typing.get_args(annotation))
    return [v for arg in typing.get_args(annotation) for v in _literals(arg)]


def _is_text(field: FieldInfo) -> bool:
    return "str" in str(field.annotation).lower()


def render() -> str:
    """The whole of docs/settings.md."""
    rows = []
    for name, field in Settings.model_fields.items():
        if name.startswith("fault_"):
            continue  # test seams, not settings for users
        meaning = (field.description or "").replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `TICKLAKE_{name.upper()}` | {_default(name, field)} | "
                    f"{_allowed(field)} | {meaning} |")
    return HEADER + "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m config.settings_doc",
                                     description="Write docs/settings.md from Settings.")
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if docs/settings.md differs")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not DOC.exists() or DOC.read_text() != text:
            print(f"{DOC} is out of date: run python -m config.settings_doc", file=sys.stderr)
            sys.exit(1)
        return
    DOC.write_text(text)
    print(f"wrote {DOC} ({text.count(chr(10)) - HEADER.count(chr(10))} settings)")


if __name__ == "__main__":
    main()
