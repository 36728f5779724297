"""`driftgate template validate` and `driftgate template diff`."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from driftgate.proxy.errors import TemplateError
from driftgate.proxy.templates import BUNDLED_DIR, load_template_file, validate_template
from driftgate.proxy.templates.loader import template_files
from driftgate.watchers.diff import diff_templates, render_markdown

UNLIMITED = 10**12


def _expand(paths: Sequence[Path]) -> list[Path]:
    out: list[Path] = []
    for path in paths or [BUNDLED_DIR]:
        out.extend(template_files(path) if path.is_dir() else [path])
    return out


def validate_paths(paths: Sequence[Path], out: TextIO | None = None) -> int:
    """Print `ok`/`FAIL` per template file; 1 when any fails or none was found."""
    out = out or sys.stdout
    files = _expand(paths)
    if not files:
        print("no template files found in " + ", ".join(map(str, paths)), file=out)
        return 1
    failed = 0
    for path in files:
        try:
            t = load_template_file(path)
        except TemplateError as exc:
            failed += 1
            print(f"FAIL {exc}", file=out)
            continue
        source = t.doc["source"]
        print(
            f"ok   {path} ({t.kind} {t.name}, {source['package']} {source['version']}, {t.hash})",
            file=out,
        )
    print(f"{len(files) - failed} valid, {failed} invalid", file=out)
    return 1 if failed else 0


def _read(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise TemplateError(f"{path}: no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"{path}: cannot read: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise TemplateError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise TemplateError(f"{path}: a template is a JSON object")
    return doc


def diff_files(
    old: Path,
    new: Path,
    *,
    max_chars: int | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Print the PR Markdown for OLD -> NEW; an invalid side is warned about, not refused."""
    out, err = out or sys.stdout, err or sys.stderr
    docs = []
    for path in (old, new):
        doc = _read(path)
        try:
            validate_template(doc, str(path))
        except TemplateError as exc:
            print(f"warning: {exc}", file=err)
        docs.append(doc)
    drift = diff_templates(docs[0], docs[1])
    out.write(render_markdown(drift, max_chars=max_chars or UNLIMITED))
    return 0
