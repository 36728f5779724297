"""The fixed chunks of a Chat Completions stream, in the layouts OpenAI writes them, as bytes.

Every chunk of a stream starts with the same head (`data: {"id":...,"model":...,"choices":[`).
The first chunk's head is checked once by `HEAD`, which only valid JSON matches: compact, keys
in OpenAI's order and each once, no escapes, numbers as JSON writes them. Such a head holds none
of the keys the decoder reads but the id, so a later chunk that starts with the same bytes means
what the bytes after them mean: the role chunk, a finish chunk and the first content chunk are
then told by those bytes alone (dict lookups here), not by parsing the whole chunk.
"""

from __future__ import annotations

import re

from driftgate.proxy.translate.ir import StopReason
from driftgate.proxy.translate.openai_response import STOP_FROM_OPENAI

_NUMBER = rb"(?:0|[1-9][0-9]{0,14})"
# A chunk's head up to its choices; group 1 is its id.
HEAD = re.compile(
    rb'data: \{"id":"([A-Za-z0-9_.:-]{1,200})","object":"chat\.completion\.chunk","created":'
    rb'%b,"model":"[ !#-\[\]-~]{0,200}"(?:,"service_tier":"[a-z_]{1,40}")?'
    rb'(?:,"system_fingerprint":(?:"[A-Za-z0-9_.-]{1,100}"|null))?,"choices":\[' % _NUMBER
).match
# A content chunk's bytes after the head, up to its string.
CONTENT_HEAD = b'{"index":0,"delta":{"content":'
_LOGPROBS = (b"", b'"logprobs":null,')
_USAGE = (b"", b',"usage":null')
# The role chunk's bytes after the head -> a content chunk's bytes after its string, in the
# same layout (with or without logprobs and `"usage":null`).
ROLE_TAILS: dict[bytes, bytes] = {
    b'{"index":0,"delta":{"role":"assistant","content":""%b},%b"finish_reason":null}]%b}'
    % (refusal, logprobs, usage): b'},%b"finish_reason":null}]%b}' % (logprobs, usage)
    for refusal in (b"", b',"refusal":null')
    for logprobs in _LOGPROBS
    for usage in _USAGE
}
# A finish chunk's bytes after the head -> its stop reason.
FINISH_TAILS: dict[bytes, StopReason] = {
    b'{"index":0,"delta":{},%b"finish_reason":"%b"}]%b}' % (logprobs, finish.encode(), usage): stop
    for finish, stop in STOP_FROM_OPENAI.items()
    for logprobs in _LOGPROBS
    for usage in _USAGE
}
# A usage chunk's bytes after the head, before its usage object (then only the closing brace).
USAGE_HEAD = b'],"usage":'
