"""The OpenAI endpoints beyond completions that the gateway forwards as they are: embeddings,
files (upload, list, retrieve, content, delete) and Responses retrieval, validated as the real
API validates them."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import struct
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from typing import Any

from aiohttp import web

from tests.fakes.reply_plan import words

EMBEDDING_MODELS = ("text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002")
EMBEDDING_FIELDS = frozenset({"model", "input", "encoding_format", "dimensions", "user"})
FILE_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
DEFAULT_DIMENSIONS = 8
CONTENT_PIECES = 4  # a file's content is written in this many chunks, a moment apart
_ids = itertools.count(1)


class Invalid(Exception):
    """A request the real API refuses with a 400 (message, param)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


@dataclass
class OtherState:
    """What the fake keeps between requests: uploaded files."""

    files: dict[str, tuple[dict[str, Any], bytes]] = field(default_factory=dict)


def _vector(text: str, dims: int) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [round((digest[i % len(digest)] - 128) / 128, 4) for i in range(dims)]


def _texts(value: Any) -> list[str]:
    """The inputs as the API reads them: a string, strings, tokens, or arrays of tokens."""
    if isinstance(value, str) and value:
        return [value]
    if isinstance(value, list) and value:
        if all(isinstance(v, str) and v for v in value):
            return list(value)
        if all(isinstance(v, int) for v in value):
            return [" ".join(map(str, value))]
        if all(isinstance(v, list) and v and all(isinstance(t, int) for t in v) for v in value):
            return [" ".join(map(str, v)) for v in value]
    raise Invalid(
        "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.",
        "input",
    )


def embeddings(body: Any) -> dict[str, Any]:
    """An embeddings answer for a valid request (Invalid otherwise)."""
    if not isinstance(body, dict):
        raise Invalid("We could not parse the JSON body of your request.")
    unknown = sorted(set(body) - EMBEDDING_FIELDS)
    if unknown:
        raise Invalid(f"Unrecognized request argument supplied: {unknown[0]}")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise Invalid("you must provide a model parameter", "model")
    if "input" not in body:
        raise Invalid("Missing required parameter: 'input'.", "input")
    texts = _texts(body["input"])
    fmt = body.get("encoding_format", "float")
    if fmt not in ("float", "base64"):
        raise Invalid(
            f"'{fmt}' is not one of ['float', 'base64'] - 'encoding_format'", "encoding_format"
        )
    dims = body.get("dimensions", DEFAULT_DIMENSIONS)
    if not isinstance(dims, int) or isinstance(dims, bool) or dims < 1:
        raise Invalid("Invalid value for 'dimensions': must be a positive integer.", "dimensions")
    data = []
    for i, text in enumerate(texts):
        vec = _vector(text, dims)
        value: Any = vec
        if fmt == "base64":
            value = base64.b64encode(struct.pack(f"<{dims}f", *vec)).decode()
        data.append({"object": "embedding", "index": i, "embedding": value})
    tokens = sum(len(words(t)) for t in texts)
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def file_object(file_id: str, name: str, size: int, purpose: str) -> dict[str, Any]:
    """A File object as the API returns it."""
    return {
        "id": file_id,
        "object": "file",
        "bytes": size,
        "created_at": 1767225600,
        "filename": name,
        "purpose": purpose,
        "status": "processed",
        "expires_at": None,
        "status_details": None,
    }


def _form(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """A multipart/form-data body's fields: name -> (filename, bytes); Invalid when malformed."""
    message = BytesParser(policy=policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    if not message.is_multipart() or message.defects:
        raise Invalid("Could not parse multipart form")
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str):
            raw = part.get_payload(decode=True)
            fields[name] = (part.get_filename(), raw if isinstance(raw, bytes) else b"")
    return fields


def upload(state: OtherState, content_type: str, body: bytes) -> dict[str, Any]:
    """POST /v1/files: a multipart form with `purpose` and `file` (Invalid otherwise)."""
    if not content_type.startswith("multipart/form-data") or "boundary=" not in content_type:
        raise Invalid("Invalid Content-Type header, expected multipart/form-data with a boundary.")
    form = _form(content_type, body)
    purpose = form.get("purpose", (None, b""))[1].decode() if "purpose" in form else None
    if purpose is None:
        raise Invalid("Missing required parameter: 'purpose'.", "purpose")
    if purpose not in FILE_PURPOSES:
        raise Invalid(f"'{purpose}' is not one of {list(FILE_PURPOSES)} - 'purpose'", "purpose")
    filename, data = form.get("file", (None, b""))
    if filename is None:
        raise Invalid("Missing required parameter: 'file'.", "file")
    file_id = f"file-fake{next(_ids):06d}"
    obj = file_object(file_id, filename, len(data), purpose)
    state.files[file_id] = (obj, data)
    return obj


def listing(state: OtherState, query: Any) -> dict[str, Any]:
    """GET /v1/files: newest first, `purpose` and `limit` honoured."""
    purpose = query.get("purpose")
    data = [obj for obj, _ in reversed(state.files.values()) if purpose in (None, obj["purpose"])]
    limit = query.get("limit")
    if limit is not None:
        if not limit.isdigit() or not 1 <= int(limit) <= 10000:
            raise Invalid("Invalid 'limit': integer between 1 and 10000 expected.", "limit")
        data = data[: int(limit)]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": False,
    }


async def content(request: web.Request, data: bytes) -> web.StreamResponse:
    """A file's bytes, chunked and written in pieces a moment apart (a stream to relay)."""
    resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    step = max(1, -(-len(data) // CONTENT_PIECES))
    for i in range(0, len(data), step):
        await resp.write(data[i : i + step])
        await asyncio.sleep(0.01)
    await resp.write_eof()
    return resp
