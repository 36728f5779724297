"""`driftgate top` on the command line: --help that explains, bad flags refused in words."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftgate.proxy.cli import main


def test_help_names_the_tabs_and_the_keys(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["top", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for words in ("Status", "Analytics", "Hits", "Backends", "r resume", "q quit", "--url",
                  "NOT REACHABLE", "never its content"):  # fmt: skip
        assert words in out


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--window", "soon"], "--window: window must be a positive number"),
        (["--interval", "0"], "--interval must be a positive number of seconds"),
    ],
)
def test_bad_flags_are_refused_with_a_sentence(
    flags: list[str], words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text("")
    assert main(["--config", str(config), "top", *flags]) == 2
    assert words in capsys.readouterr().err
