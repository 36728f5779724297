"""Approved templates: JSON documents, checked against their JSON Schemas, content-hashed."""

from driftgate.proxy.templates.loader import (
    BUNDLED_DIR,
    Template,
    TemplateSet,
    canonical_json,
    content_hash,
    load_bundled,
    load_template_file,
    validate_template,
)

__all__ = [
    "BUNDLED_DIR",
    "Template",
    "TemplateSet",
    "canonical_json",
    "content_hash",
    "load_bundled",
    "load_template_file",
    "validate_template",
]
