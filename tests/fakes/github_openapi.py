"""GitHub's published OpenAPI description (npm `@octokit/openapi`): response checks and examples."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = ROOT / "node_modules" / "@octokit" / "openapi" / "generated" / "api.github.com.json"
SPEC_URI = "urn:github-openapi"


class ResponseShapeError(AssertionError):
    """A fake response does not match GitHub's published response schema."""


@cache
def spec() -> dict[str, Any]:
    """The OpenAPI document (loaded once per process)."""
    if not SPEC_PATH.exists():
        raise FileNotFoundError(f"{SPEC_PATH} is missing: run `npm ci` (tests/run does)")
    loaded: dict[str, Any] = json.loads(SPEC_PATH.read_text())
    return loaded


@cache
def _registry() -> Registry[Any]:
    resource: Resource[Any] = Resource.from_contents(spec(), default_specification=DRAFT4)
    registry: Registry[Any] = Registry().with_resource(SPEC_URI, resource)
    return registry


def _pointer(*parts: str) -> str:
    return "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def _resolve(obj: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in obj:
        node: Any = spec()
        for part in obj["$ref"].removeprefix("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        obj = node
    return obj


@cache
def _validator(path: str, method: str, status: str) -> OAS30Validator | None:
    """The validator for one documented response, None when that status has no JSON body."""
    operation = spec()["paths"][path][method]
    responses = operation["responses"]
    if status not in responses:
        return None
    content = _resolve(responses[status]).get("content", {})
    if "application/json" not in content:
        return None
    response = responses[status]
    if "$ref" in response:  # a shared response: components/responses/NAME
        base = response["$ref"]
    else:
        base = "#/" + _pointer("paths", path, method, "responses", status)
    return _validator_for_ref(base + "/content/application~1json/schema")


@cache
def _validator_for_ref(fragment: str) -> OAS30Validator:
    return OAS30Validator({"$ref": SPEC_URI + fragment}, registry=_registry())


def check_response(path: str, method: str, status: int, body: Any) -> None:
    """Raise ResponseShapeError if `body` does not fit the operation's schema for `status`.

    Statuses an operation does not document (scripted 5xx, rate limits) are checked against
    GitHub's `basic-error` shape.
    """
    operation = spec()["paths"].get(path, {}).get(method.lower())
    if operation is None:
        raise ResponseShapeError(
            f"{method} {path} is not an operation in GitHub's OpenAPI description"
        )
    validator = _validator(path, method.lower(), str(status))
    if validator is None and str(status) not in operation["responses"]:
        validator = _validator_for_ref("#/components/schemas/basic-error")
    if validator is None:
        return
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    if errors:
        shown = "; ".join(
            f"/{'/'.join(str(p) for p in e.absolute_path)}: {e.message[:200]}" for e in errors[:3]
        )
        raise ResponseShapeError(f"{method.upper()} {path} -> {status}: {shown}")


def example(name: str) -> Any:
    """A deep copy of one of the description's named examples (components/examples/NAME)."""
    return copy.deepcopy(spec()["components"]["examples"][name]["value"])
