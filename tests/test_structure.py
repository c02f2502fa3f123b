"""The house's structure stays: imports flow one way between the rooms, function-local
imports included, and ``golden_model`` has no import cycle (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Each room and the rooms it may import (besides itself). ``toolchain`` is the small sixth
#: room: finding and running the open tools, shared by ``sim`` and ``boards``.
ALLOWED = {
    "golden_model": set(),
    "toolchain": set(),
    "hw": {"golden_model"},
    "sim": {"golden_model", "hw", "toolchain"},
    "boards": {"golden_model", "hw", "sim", "toolchain"},
    "pulsegate": {"golden_model", "hw", "sim", "boards", "toolchain"},
}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(path: Path, package: str | None = None) -> set[str]:
    """Every module ``path`` imports, at any depth (``TYPE_CHECKING`` blocks left out),
    relative imports resolved to absolute names (``package``: the file's package)."""
    if package is None:
        package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
                found.add(module)
                if node.module is None:
                    found.update(f"{module}.{alias.name}" for alias in node.names)
            elif node.module:
                found.add(node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return found


def room_modules(room: str) -> list[Path]:
    return sorted((ROOT / room).rglob("*.py"))


@pytest.mark.parametrize("room", sorted(ALLOWED))
def test_imports_flow_one_way(room):
    wrong = []
    for path in room_modules(room):
        for name in imports_of(path):
            target = name.split(".")[0]
            if target in ALLOWED and target != room and target not in ALLOWED[room]:
                wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not wrong, wrong


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """A path that comes back to where it started, or None."""
    state: dict[str, str] = {}

    def walk(node: str, trail: list[str]) -> list[str] | None:
        state[node] = "open"
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                return [*trail, node, nxt]
            if nxt not in state and (found := walk(nxt, [*trail, node])):
                return found
        state[node] = "done"
        return None

    for node in sorted(edges):
        if node not in state and (found := walk(node, [])):
            return found
    return None


def test_golden_model_has_no_import_cycle():
    modules = {p.stem: p for p in room_modules("golden_model") if p.stem != "__init__"}
    edges = {
        name: {
            m.split(".")[1]
            for m in imports_of(path)
            if m.startswith("golden_model.") and m.split(".")[1] in modules
        }
        - {name}
        for name, path in modules.items()
    }
    assert find_cycle(edges) is None


def test_the_checks_can_fail(tmp_path):
    """A function-local import is seen, relative imports resolve, and a cycle is found."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from .config import Config\n"
        "def f():\n    from boards.plans import BOARDS\n    return BOARDS\n"
        "if TYPE_CHECKING:\n    from pulsegate import cli\n"
    )
    assert imports_of(probe, package="golden_model") == {"golden_model.config", "boards.plans"}
    assert find_cycle({"config": {"dynamics"}, "dynamics": {"config"}}) is not None
    assert find_cycle({"config": {"limits"}, "dynamics": {"limits", "config"}}) is None


def test_every_configuration_the_docs_name_ships_with_the_project():
    import re

    from golden_model.config import Config
    from pulsegate.commands.common import config_path

    names = set()
    for doc in ("README.md", "BENCHMARKS.md", "docs/hardware.md", "docs/model.md"):
        names |= set(re.findall(r"--config ([A-Za-z0-9_.-]+)", (ROOT / doc).read_text()))
    names -= {"FILE"}
    assert names >= {"digits", "iris", "iris12", "linear"}
    for name in sorted(names):
        path = config_path(name)
        assert path.exists(), f"--config {name} in the docs does not ship"
        Config.load(path)  # and it is valid


def _command_parser(parser, words):
    """The parser of the subcommand ``words`` names (as far as they name subcommands)."""
    import argparse

    path = []
    for word in words:
        actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not actions or word not in actions[0].choices:
            break
        parser = actions[0].choices[word]
        path.append(word)
    return parser, path


def _leaf_commands(parser, prefix: str = "") -> set[str]:
    """Every command that runs something: no subcommands of its own, or a default action."""
    import argparse

    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not actions:
        return {prefix.strip()}
    found = {prefix.strip()} if prefix and parser.get_default("func") else set()
    for name, child in actions[0].choices.items():
        found |= _leaf_commands(child, f"{prefix} {name}")
    return found


def test_the_readme_shows_every_option_of_every_command_and_no_other():
    import re

    from pulsegate.cli import build_parser

    readme = (ROOT / "README.md").read_text()
    synopses = re.findall(r"^`pulsegate ([^`]*)`", readme, re.M)
    seen = {}
    for synopsis in synopses:
        words = synopsis.split()
        parser, path = _command_parser(build_parser(), words)
        shown = set(re.findall(r"(--[a-z][a-z-]*)", synopsis))
        options = {
            option
            for action in parser._actions
            for option in action.option_strings
            if option.startswith("--") and option != "--help"
        }
        assert shown <= options, f"pulsegate {' '.join(path)}: {sorted(shown - options)} unknown"
        seen.setdefault(" ".join(path), set()).update(shown)
        seen[" ".join(path) + " (all)"] = options
    leaves = _leaf_commands(build_parser())
    assert not leaves - set(seen), f"README has no synopsis for {sorted(leaves - set(seen))}"
    for command in [key for key in seen if not key.endswith(" (all)")]:
        missing = seen[command + " (all)"] - seen[command]
        assert not missing, f"README's pulsegate {command} leaves out {sorted(missing)}"
