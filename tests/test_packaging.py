"""One import namespace: the folders install as driftgate.proxy and driftgate.watchers only."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"proxy": "driftgate.proxy", "watchers": "driftgate.watchers"}


def _run(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_every_package_folder_is_listed_in_pyproject() -> None:
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = set()
    for folder, name in FOLDERS.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((name, *rel)))
    assert found == listed


def test_top_level_proxy_and_watchers_are_not_importable(tmp_path: Path) -> None:
    # Run outside the checkout: the repository root on sys.path would hide the question.
    for bare in ("proxy", "watchers"):
        r = _run(f"import {bare}", tmp_path)
        assert r.returncode != 0 and "ModuleNotFoundError" in r.stderr, bare
    r = _run(
        "import driftgate.proxy, driftgate.watchers; print(driftgate.proxy.__file__)", tmp_path
    )
    assert r.returncode == 0, r.stderr
    assert Path(r.stdout.strip()).resolve() == ROOT / "proxy" / "__init__.py"


def test_package_data_is_reachable_from_the_installed_name(tmp_path: Path) -> None:
    r = _run(
        "from driftgate.proxy.templates import load_bundled; print(sorted(load_bundled().templates))",
        tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert "anthropic" in r.stdout


def test_module_invocation_runs_the_cli(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "driftgate.proxy.cli", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert "usage: driftgate" in r.stdout


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_gateway_never_imports_the_watchers() -> None:
    offenders = [
        f"{p.relative_to(ROOT)} imports {m}"
        for p in sorted((ROOT / "proxy").rglob("*.py"))
        for m in _imported_modules(p)
        if m == "driftgate.watchers" or m.startswith(("driftgate.watchers.", "watchers"))
    ]
    assert offenders == []


def test_the_import_check_can_fail(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from driftgate.watchers.cli import register_watch\n")
    assert "driftgate.watchers.cli" in _imported_modules(bad)


def test_every_module_imports_outside_the_checkout(tmp_path: Path) -> None:
    # A stray `from proxy.x import y` works from the repository root and nowhere else.
    modules = []
    for folder, name in FOLDERS.items():
        for py in sorted((ROOT / folder).rglob("*.py")):
            rel = py.relative_to(ROOT / folder).with_suffix("").parts
            if rel[-1] in ("__init__", "__main__"):
                rel = rel[:-1]
            modules.append(".".join((name, *rel)))
    r = _run(f"import importlib\nfor m in {modules!r}:\n    importlib.import_module(m)", tmp_path)
    assert r.returncode == 0, r.stderr
