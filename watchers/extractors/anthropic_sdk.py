"""@anthropic-ai/sdk -> anthropic.json: model ids, beta names, default API version."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from driftgate.watchers.extractors.base import Extracted, first_text, missing_file, read_union
from driftgate.watchers.npm.tarball import PackageFiles

# Older SDKs kept these one directory up; the first path is where 1.x ships them.
MESSAGES_PATHS = ("resources/messages/messages.d.ts", "resources/messages.d.ts")
BETA_PATHS = ("resources/beta/beta.d.ts", "resources/beta.d.ts")
CLIENT_PATHS = ("client.js", "index.js")
_API_VERSION = re.compile(r"""['"]anthropic-version['"]\s*:\s*['"]([^'"\s]+)['"]""")


@dataclass(frozen=True)
class AnthropicSdkExtractor:
    """Models from the `Model` union, betas from `AnthropicBeta`, the default anthropic-version."""

    name: str = "anthropic-sdk"
    package: str = "@anthropic-ai/sdk"
    template: str = "anthropic"

    def extract(self, files: PackageFiles, manifest: Mapping[str, Any]) -> Extracted:
        """Facts: models, betas, api_version."""
        problems: list[str] = []
        facts: dict[str, Any] = {}
        models = read_union(files, MESSAGES_PATHS, "Model", "model ids", problems)
        if models is not None:
            facts["models"] = models
        betas = read_union(files, BETA_PATHS, "AnthropicBeta", "beta names", problems)
        if betas is not None:
            facts["betas"] = betas
        found = first_text(files, CLIENT_PATHS)
        if found is None:
            problems.append(missing_file(CLIENT_PATHS, "the API version"))
        else:
            m = _API_VERSION.search(found[1])
            if m is None:
                problems.append(f"{found[0]}: no default 'anthropic-version' header found")
            else:
                facts["api_version"] = m.group(1)
        return Extracted(facts=facts, problems=tuple(problems))
