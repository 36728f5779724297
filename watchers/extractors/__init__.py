"""Extractor plugins: one per watched npm package, built-ins listed here, others by entry point."""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

from driftgate.watchers.extractors.anthropic_sdk import AnthropicSdkExtractor
from driftgate.watchers.extractors.base import Extracted, Extractor
from driftgate.watchers.extractors.claude_code import ClaudeCodeExtractor
from driftgate.watchers.extractors.openai_sdk import OpenAiSdkExtractor

ENTRY_POINT_GROUP = "driftgate.extractors"
BUILTINS: tuple[Extractor, ...] = (
    AnthropicSdkExtractor(),
    OpenAiSdkExtractor(),
    ClaudeCodeExtractor(),
)
log = logging.getLogger(__name__)


def _plugin(obj: object) -> Extractor | None:
    """An entry point may name an extractor instance or a class/factory that makes one."""
    candidate: object = obj
    if callable(obj) and (isinstance(obj, type) or not isinstance(obj, Extractor)):
        candidate = obj()
    return candidate if isinstance(candidate, Extractor) else None


def extractors() -> dict[str, Extractor]:
    """Package name -> extractor: the built-ins, then `driftgate.extractors` entry points (which win)."""
    found: dict[str, Extractor] = {e.package: e for e in BUILTINS}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            ext = _plugin(ep.load())
        except Exception as exc:  # a broken third-party plugin must not stop the other packages
            log.warning("extractor plugin %s failed to load: %s", ep.name, exc)
            continue
        if ext is None:
            log.warning(
                "extractor plugin %s is not an extractor (needs name, package, template, extract)",
                ep.name,
            )
            continue
        found[ext.package] = ext
    return found


def default_watched() -> list[str]:
    """The packages watched when the config names none."""
    return [e.package for e in BUILTINS]


__all__ = [
    "BUILTINS",
    "ENTRY_POINT_GROUP",
    "Extracted",
    "Extractor",
    "default_watched",
    "extractors",
]
