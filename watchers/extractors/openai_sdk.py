"""openai -> openai.json: chat model ids."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from driftgate.watchers.extractors.base import Extracted, read_union
from driftgate.watchers.npm.tarball import PackageFiles

SHARED_PATHS = ("resources/shared.d.ts",)


@dataclass(frozen=True)
class OpenAiSdkExtractor:
    """Models from the `ChatModel` union in resources/shared.d.ts."""

    name: str = "openai-sdk"
    package: str = "openai"
    template: str = "openai"

    def extract(self, files: PackageFiles, manifest: Mapping[str, Any]) -> Extracted:
        """Facts: models."""
        problems: list[str] = []
        models = read_union(files, SHARED_PATHS, "ChatModel", "model ids", problems)
        facts = {"models": models} if models is not None else {}
        return Extracted(facts=facts, problems=tuple(problems))
