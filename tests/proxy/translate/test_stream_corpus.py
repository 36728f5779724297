"""Every translated stream of the seeded corpus gives the bytes frozen before the fixed events were
written from templates (see stream_corpus.py): a change that was meant to be only faster is."""

from __future__ import annotations

import json

from tests.proxy.translate.stream_corpus import FROZEN, cases, digest, normalised


def test_every_case_writes_the_frozen_bytes_in_any_chunking() -> None:
    frozen: dict[str, str] = json.loads(FROZEN.read_text())
    seen = 0
    differ = []
    for name, outs in cases():
        seen += 1
        for way, out in outs.items():
            if digest(out) != frozen.get(name):
                differ.append(f"{name} ({way})")
    assert seen == len(frozen), "the corpus is the one the digests were frozen from"
    assert not differ, (
        f"{len(differ)} streams differ from the frozen bytes, first {differ[:8]}; see one with "
        "`python -m tests.proxy.translate.stream_corpus --show NAME`"
    )


def test_the_digest_sees_one_byte_and_an_ids_format() -> None:
    """The check can fail: a changed byte, or an id of another length, gives another digest."""
    name, outs = next(iter(cases()))
    out = outs["one"]
    assert digest(out) == json.loads(FROZEN.read_text())[name]
    assert digest(out.replace(b"\n\n", b"\n \n", 1)) != digest(out)
    one = normalised(b'"msg_' + b"a" * 32 + b'","msg_' + b"a" * 32 + b'"')
    assert one == b'"msg_<32:0>","msg_<32:0>"'
    assert normalised(b'"msg_' + b"a" * 31 + b'"') == b'"msg_' + b"a" * 31 + b'"'
    assert normalised(b'"resp_' + b"b" * 24 + b'"') == b'"resp_<24:0>"'
