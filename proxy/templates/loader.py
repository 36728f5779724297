"""Load, validate and hash templates; the bundled set optionally overlaid by a directory."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource

from driftgate.proxy.errors import TemplateError

BUNDLED_DIR = Path(__file__).resolve().parent
SCHEMA_FILES = {"upstream": "upstream.schema.json", "client": "client.schema.json"}


def canonical_json(doc: Any) -> str:
    """Canonical form: sorted keys, two-space indent, trailing newline (what watchers write)."""
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def content_hash(doc: Any) -> str:
    """sha256 of the canonical JSON, as `sha256:<hex>`."""
    return "sha256:" + hashlib.sha256(canonical_json(doc).encode()).hexdigest()


@cache
def _validators() -> dict[str, Draft202012Validator]:
    """Compiled once per process: schema compilation never happens per request."""
    schemas = {
        kind: json.loads((BUNDLED_DIR / fname).read_text()) for kind, fname in SCHEMA_FILES.items()
    }
    registry: Registry = Registry().with_resources(
        (s["$id"], Resource.from_contents(s)) for s in schemas.values()
    )
    registry = registry.with_resources(
        (fname, Resource.from_contents(schemas[kind])) for kind, fname in SCHEMA_FILES.items()
    )
    return {
        kind: Draft202012Validator(
            schema, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER
        )
        for kind, schema in schemas.items()
    }


def validate_template(doc: Any, origin: str = "<template>") -> None:
    """Raise TemplateError naming the first problems if `doc` does not fit its schema."""
    if not isinstance(doc, dict):
        raise TemplateError(f"{origin}: a template is a JSON object")
    kind = doc.get("kind")
    validator = _validators().get(str(kind))
    if validator is None:
        raise TemplateError(f"{origin}: kind must be one of {sorted(SCHEMA_FILES)}, got {kind!r}")
    errors: list[ValidationError] = sorted(
        validator.iter_errors(doc), key=lambda e: list(e.absolute_path)
    )
    if errors:
        lines = [f"/{'/'.join(str(p) for p in e.absolute_path)}: {e.message}" for e in errors[:5]]
        more = f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""
        raise TemplateError(
            f"{origin}: does not match the {kind} schema: " + "; ".join(lines) + more
        )


@dataclass(frozen=True)
class Template:
    """One validated template and where it came from."""

    name: str
    kind: str
    doc: Mapping[str, Any]
    hash: str
    origin: str

    @property
    def version(self) -> str:
        """The source package version this template was baked from."""
        return str(self.doc["source"]["version"])


def load_template_file(path: Path) -> Template:
    """Read, parse and validate one template file."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TemplateError(f"{path}: cannot read: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise TemplateError(f"{path}: not valid JSON: {exc}") from exc
    validate_template(doc, str(path))
    return Template(
        name=doc["name"], kind=doc["kind"], doc=doc, hash=content_hash(doc), origin=str(path)
    )


@dataclass(frozen=True)
class TemplateSet:
    """The templates in force, by name, plus the problems met while loading them."""

    templates: Mapping[str, Template]
    errors: tuple[str, ...] = field(default=())

    def get(self, name: str) -> Template | None:
        """The template called `name`, if loaded."""
        return self.templates.get(name)

    def summary(self) -> list[dict[str, str]]:
        """What /health reports: name, version, hash and origin of each template."""
        return [
            {
                "name": t.name,
                "kind": t.kind,
                "version": t.version,
                "hash": t.hash,
                "origin": t.origin,
            }
            for t in sorted(self.templates.values(), key=lambda t: t.name)
        ]


def template_files(directory: Path) -> list[Path]:
    """Template documents in `directory` (schema files excluded), sorted."""
    return sorted(p for p in directory.glob("*.json") if not p.name.endswith(".schema.json"))


def load_bundled() -> TemplateSet:
    """The templates shipped in this package; an invalid one is a packaging bug and raises."""
    return TemplateSet({t.name: t for t in map(load_template_file, template_files(BUNDLED_DIR))})
