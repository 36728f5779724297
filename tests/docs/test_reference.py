"""The reference lists stay complete: every command, every flag of `proxy`, every variable."""

from __future__ import annotations

import argparse
import dataclasses
import re
from typing import Any

from driftgate.proxy.cli import build_parser
from driftgate.proxy.config import BackendConfig, Config
from driftgate.proxy.config_schema import keys_of, tables_of

from .markdown import ROOT
from .opening import section

README = (ROOT / "README.md").read_text()
CONFIGURATION = (ROOT / "docs" / "configuration.md").read_text()
OPERATIONS = (ROOT / "docs" / "operations.md").read_text()


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse keeps its subparsers here, and nowhere public
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _flags(parser: argparse.ArgumentParser) -> set[str]:
    return {
        opt
        for a in parser._actions
        if a.help != argparse.SUPPRESS and not isinstance(a, argparse._HelpAction)
        for opt in a.option_strings
        if opt.startswith("--")
    }


def _environment_settings(cls: type[Any]) -> set[str]:
    out = {k.setting.env for k in keys_of(cls).values() if k.setting.env}
    for spec in tables_of(cls).values():
        out |= _environment_settings(spec.cls)
    for f in dataclasses.fields(cls):  # sub-tables declared as settings of their own
        if dataclasses.is_dataclass(f.type) and isinstance(f.type, type):
            out |= _environment_settings(f.type)
    return out


def test_every_command_is_in_the_readmes_commands_table() -> None:
    table = section(README, "Commands")
    commands = _subcommands(build_parser())
    missing = [name for name in commands if f"`{name}" not in table]
    watchers = _subcommands(commands["watch"])
    missing += [f"watch {name}" for name in watchers if f"`watch {name}" not in table]
    assert not missing, f"README.md ## Commands does not list: {', '.join(missing)}"


def test_every_proxy_flag_is_in_the_readme_and_the_operations_synopsis() -> None:
    parser = build_parser()
    flags = _flags(_subcommands(parser)["proxy"]) - _flags(parser)  # not the global --config
    assert "--workers" in flags
    readme_row = next(line for line in section(README, "Commands").splitlines() if "`proxy" in line)
    synopsis = next(line for line in OPERATIONS.splitlines() if line.startswith("`driftgate proxy"))
    for where, text in (("README.md ## Commands", readme_row), ("docs/operations.md", synopsis)):
        missing = sorted(f for f in flags if f not in text)
        assert not missing, f"{where}: the proxy synopsis leaves out {', '.join(missing)}"


def test_every_environment_variable_a_setting_reads_is_in_the_configuration_page() -> None:
    table = section(CONFIGURATION, "Environment variables")
    variables = _environment_settings(Config) | _environment_settings(BackendConfig)
    variables |= {"DRIFTGATE_HOME", "DRIFTGATE_API_KEY"}  # read by the loader itself
    assert "DRIFTGATE_WORKERS" in variables
    listed = set(re.findall(r"`(DRIFTGATE_[A-Z_]+)`", table))
    missing = sorted(variables - listed)
    assert not missing, f"docs/configuration.md ## Environment variables leaves out {missing}"


def _every_parser(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> list[tuple[str, argparse.ArgumentParser]]:
    out = [(" ".join(("driftgate", *path)), parser)]
    for name, sub in _subcommands(parser).items():
        out += _every_parser(sub, (*path, name))
    return out


def test_every_option_that_takes_a_value_names_it_in_the_help() -> None:
    # argparse's fallback metavar is the option's name in capitals (`--templates TEMPLATES`),
    # which tells a reader nothing about what to give: each option says URL, PATH, DIR, N...
    lazy = []
    for where, parser in _every_parser(build_parser()):
        for a in parser._actions:
            takes_value = a.option_strings and a.nargs != 0 and a.help != argparse.SUPPRESS
            if takes_value and a.metavar is None and a.choices is None:
                lazy.append(f"{where} {a.option_strings[-1]}")
    assert not lazy, "options without a metavar: " + ", ".join(lazy)


def test_the_top_level_help_names_all_three_apis() -> None:
    text = build_parser().format_help()
    for api in ("Anthropic Messages", "Chat Completions", "Responses"):
        assert api in " ".join(text.split()), api
