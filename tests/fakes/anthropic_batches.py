"""The Anthropic Message Batches API (create, retrieve), validated as the real API validates
a batch: 1 to 100,000 requests, unique custom_ids, each `params` a valid Messages request."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from typing import Any

from tests.fakes.anthropic_validation import Invalid

MAX_REQUESTS = 100_000
_CUSTOM_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_ids = itertools.count(1)


def batch(body: Any, validate: Callable[[Any], None]) -> dict[str, Any]:
    """A new MessageBatch for a valid create request (Invalid otherwise); `validate` checks
    each request's params as /v1/messages would."""
    if not isinstance(body, dict):
        raise Invalid("The request body is not valid JSON.")
    unknown = sorted(set(body) - {"requests"})
    if unknown:
        raise Invalid(f"{unknown[0]}: Extra inputs are not permitted")
    requests = body.get("requests")
    if not isinstance(requests, list) or not requests:
        raise Invalid("requests: Field required" if requests is None else
                      "requests: List should have at least 1 item after validation")  # fmt: skip
    if len(requests) > MAX_REQUESTS:
        raise Invalid(f"requests: List should have at most {MAX_REQUESTS} items")
    seen: set[str] = set()
    for i, item in enumerate(requests):
        if not isinstance(item, dict):
            raise Invalid(f"requests.{i}: Input should be a valid dictionary")
        custom_id = item.get("custom_id")
        if not isinstance(custom_id, str) or not _CUSTOM_ID.fullmatch(custom_id):
            raise Invalid(
                f"requests.{i}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'"
            )
        if custom_id in seen:
            raise Invalid(f"requests.{i}.custom_id: duplicate custom_id '{custom_id}'")
        seen.add(custom_id)
        params = item.get("params")
        if not isinstance(params, dict):
            raise Invalid(f"requests.{i}.params: Field required")
        if params.get("stream"):
            raise Invalid(f"requests.{i}.params.stream: streaming is not supported in batches")
        try:
            validate(params)
        except Invalid as exc:
            raise Invalid(f"requests.{i}.params.{exc}", exc.error_code) from None
    return {
        "id": f"msgbatch_fake{next(_ids):06d}",
        "type": "message_batch",
        "processing_status": "in_progress",
        "request_counts": {
            "processing": len(requests),
            "succeeded": 0,
            "errored": 0,
            "canceled": 0,
            "expired": 0,
        },
        "ended_at": None,
        "created_at": "2026-12-01T00:00:00Z",
        "expires_at": "2026-12-02T00:00:00Z",
        "archived_at": None,
        "cancel_initiated_at": None,
        "results_url": None,
    }
