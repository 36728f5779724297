"""`driftgate backend add|list|remove`: edit the [backends] tables of the config file."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from driftgate.proxy.config import (
    BACKEND_KINDS,
    DEFAULT_BASE_URLS,
    base_url_hint,
    base_url_problem,
    check_backend_entry,
    config_from_table,
    default_backends,
    driftgate_home,
    header_value_problem,
    load_config,
    read_table,
    redact_secret,
    write_table,
)
from driftgate.proxy.errors import ConfigError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

BACKEND_HELP = """\
A backend is one upstream the gateway routes to: the Anthropic API, OpenAI, or any
OpenAI-compatible server (Groq, OpenRouter, Ollama, vLLM, llama.cpp). Backends live in
the [backends] tables of $DRIFTGATE_HOME/config.toml (default ~/.driftgate/config.toml),
or of the file given with `driftgate --config PATH`.

examples:
  driftgate backend add anthropic --kind anthropic --key-env ANTHROPIC_API_KEY
  driftgate backend add openai --kind openai --key-env OPENAI_API_KEY --models 'gpt-*' 'o*'
  driftgate backend add groq --kind openai --base-url https://api.groq.com/openai/v1 \\
      --key-env GROQ_API_KEY --models 'llama-*'
  driftgate backend add ollama --kind openai --base-url http://127.0.0.1:11434/v1 --models 'qwen*'
  driftgate backend add claude --kind anthropic --auth passthrough
  driftgate backend list --json
  driftgate backend remove groq
"""

ADD_HELP = """\
Add a backend (or overwrite one with --replace). Prefer --key-env: the config file then
holds only the variable's name, and the key stays in your environment. An inline --key is
written to the file, which is then made readable by you alone (mode 0600).

examples:
  driftgate backend add openai --kind openai --key-env OPENAI_API_KEY --models 'gpt-*'
  driftgate backend add ollama --kind openai --base-url http://127.0.0.1:11434/v1 --models 'llama3*'
  driftgate backend add claude --kind anthropic --auth passthrough
"""


def register(sub: Any) -> None:
    """Attach `driftgate backend` and its actions."""
    parser = sub.add_parser(
        "backend",
        help="add, list or remove the upstreams the gateway routes to",
        description=BACKEND_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(handler=lambda args: _usage(parser))
    actions = parser.add_subparsers(dest="backend_action", metavar="ACTION")

    add = actions.add_parser(
        "add",
        help="add a backend (see `driftgate backend add --help`)",
        description=ADD_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add.add_argument(
        "name", metavar="NAME", help="a short name, used in routes like NAME:model (e.g. groq)"
    )
    add.add_argument(
        "--kind",
        required=True,
        metavar="KIND",
        help=f"the API dialect the backend speaks: {' or '.join(BACKEND_KINDS)} "
        "(every OpenAI-compatible server is 'openai')",
    )
    add.add_argument(
        "--base-url",
        metavar="URL",
        help="where the API lives; for openai include /v1 (e.g. http://127.0.0.1:11434/v1). "
        "Default: the official API of KIND "
        f"({DEFAULT_BASE_URLS['anthropic']}, {DEFAULT_BASE_URLS['openai']})",
    )
    key = add.add_mutually_exclusive_group()
    key.add_argument(
        "--key-env",
        metavar="VAR",
        help="name of the environment variable holding the API key, read when the gateway "
        "starts (e.g. GROQ_API_KEY); recommended",
    )
    key.add_argument(
        "--key",
        metavar="KEY",
        help="the API key itself, stored in the config file (mode 0600); prefer --key-env",
    )
    add.add_argument(
        "--models",
        nargs="+",
        default=[],
        metavar="PAT",
        help="model ids or glob patterns this backend serves (e.g. 'gpt-*' 'o3'); "
        "a request for a matching model is routed here",
    )
    add.add_argument(
        "--auth",
        choices=("key", "passthrough"),
        default="key",
        help="'passthrough' (anthropic only): forward the client's own x-api-key / Authorization "
        "unchanged instead of a configured key (default: key)",
    )
    add.add_argument("--replace", action="store_true", help="overwrite a backend of the same name")
    add.set_defaults(handler=cmd_add)

    lst = actions.add_parser(
        "list",
        help="show the configured backends (keys redacted)",
        description="Show the configured backends; keys are redacted.",
    )
    lst.add_argument("--json", action="store_true", help="print a JSON array (for scripts)")
    lst.set_defaults(handler=cmd_list)

    rm = actions.add_parser(
        "remove", help="remove a backend", description="Remove a backend by name."
    )
    rm.add_argument(
        "name", metavar="NAME", help="the backend to remove (see `driftgate backend list`)"
    )
    rm.set_defaults(handler=cmd_remove)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def config_path(args: argparse.Namespace, env: Mapping[str, str]) -> Path:
    """`--config PATH`, else `$DRIFTGATE_HOME/config.toml`."""
    raw = getattr(args, "config", None)
    return Path(raw).expanduser() if raw else driftgate_home(env) / "config.toml"


def backend_table(args: argparse.Namespace) -> dict[str, Any]:
    """The TOML table for `backend add` flags, checked the way the config loader will check it."""
    if not _NAME.match(args.name):
        raise ConfigError(
            f"backend name {args.name!r}: use letters, digits, '-', '_' or '.', starting with a letter or digit"
        )
    if args.kind not in BACKEND_KINDS:
        raise ConfigError(f"unknown kind {args.kind!r}: choose one of {', '.join(BACKEND_KINDS)}")
    if args.auth == "passthrough" and args.kind != "anthropic":
        raise ConfigError(
            "--auth passthrough is only for --kind anthropic (the client's own Anthropic credentials)"
        )
    if args.auth == "passthrough" and (args.key or args.key_env):
        raise ConfigError(
            "--auth passthrough uses the client's credentials: drop --key / --key-env"
        )
    table: dict[str, Any] = {"kind": args.kind}
    if args.base_url:
        problem = base_url_problem(args.base_url)
        if problem:  # the URL is not repeated: it may hold a password
            raise ConfigError(f"--base-url {problem}")
        table["base_url"] = args.base_url.rstrip("/")
    if args.key_env:
        table["key_env"] = args.key_env
    if args.key:
        problem = header_value_problem(args.key)
        if problem:
            raise ConfigError(f"--key {problem}")
        table["key"] = args.key
    if args.auth != "key":
        table["auth"] = args.auth
    if args.models:
        table["models"] = list(args.models)
    check_backend_entry(args.name, table)
    return table


def cmd_add(args: argparse.Namespace) -> int:
    """Add (or with --replace, overwrite) one backend."""
    env = os.environ
    path = config_path(args, env)
    table = read_table(path)
    entry = backend_table(args)
    backends = table.setdefault("backends", {})
    if args.name in backends and not args.replace:
        raise ConfigError(
            f"backend {args.name!r} already exists in {path}; add --replace to overwrite it, "
            f"or `driftgate backend remove {args.name}` first"
        )
    backends[args.name] = entry
    config_from_table(table, path, env)  # never write a file the gateway would refuse
    write_table(path, table)
    base_url = entry.get("base_url", DEFAULT_BASE_URLS[args.kind])
    if args.key:
        key_note = f"key {redact_secret(args.key)} stored in the file (mode 0600)"
    elif args.key_env:
        key_note = f"key from ${args.key_env}"
        if not env.get(args.key_env):
            print(
                f"driftgate: note: ${args.key_env} is not set in this shell; set it before `driftgate proxy`",
                file=sys.stderr,
            )
    elif args.auth == "passthrough":
        key_note = "client credentials passed through"
    else:
        key_note = "no key"
        print(
            f"driftgate: warning: backend {args.name!r} has no key (--key-env VAR or --key KEY); "
            "fine for a local server such as Ollama, otherwise the upstream will refuse requests",
            file=sys.stderr,
        )
    hint = base_url_hint(check_backend_entry(args.name, entry))
    if hint:
        print(f"driftgate: warning: {hint}", file=sys.stderr)
    verb = "replaced" if args.replace else "added"
    print(f"{verb} backend {args.name!r} ({args.kind} {base_url}, {key_note}) in {path}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """Print the configured backends, keys redacted."""
    env = os.environ
    path = config_path(args, env)
    config = load_config(env, path, must_exist=bool(getattr(args, "config", None)))
    in_file = bool(read_table(path).get("backends"))  # not the environment's default backends
    backends = config.backends if in_file else ()
    rows = [b.redacted() for b in backends]
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    if not rows:
        print(f"no backends in {path}")
        fallback = default_backends(env)
        if fallback:
            names = ", ".join(f"{b.name} (${b.key_env})" for b in fallback)
            print(f"without any, the gateway uses keys from the environment: {names}")
        print("add one: driftgate backend add NAME --kind anthropic|openai --key-env VAR")
        return 0
    print(f"{'NAME':<16} {'KIND':<9} {'BASE_URL':<40} {'KEY':<20} MODELS")
    for row in rows:
        key = row.get("key") or (f"${row['key_env']}" if "key_env" in row else None)
        key = "passthrough" if row.get("auth") == "passthrough" else key or "no key"
        models = " ".join(row.get("models", [])) or "-"
        print(f"{row['name']:<16} {row['kind']:<9} {row['base_url']:<40} {key:<20} {models}")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    """Remove one backend; a default_backend naming it is removed too."""
    path = config_path(args, os.environ)
    table = read_table(path)
    backends = table.get("backends", {})
    if args.name not in backends:
        known = ", ".join(sorted(backends)) or "none"
        raise ConfigError(f"no backend named {args.name!r} in {path} (configured: {known})")
    del backends[args.name]
    gateway = table.get("gateway", {})
    if gateway.get("default_backend") == args.name:
        del gateway["default_backend"]
        print(
            f"driftgate: note: {args.name!r} was the default backend; no default is set now",
            file=sys.stderr,
        )
    for key, chain in table.get("fallbacks", {}).items():
        if args.name == key or args.name in chain:
            print(
                f"driftgate: warning: [fallbacks] {key!r} still names {args.name!r}",
                file=sys.stderr,
            )
    write_table(path, table)
    print(f"removed backend {args.name!r} from {path}")
    return 0
