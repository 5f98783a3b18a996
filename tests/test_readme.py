"""The README and the docs stay true: every command and every setting is documented, the README
is a front door that shows the two make targets and leads to the docs, the examples of both are
valid (Python compiles, shell lines name real commands), and CI runs `make test`, which builds
the docs site with `mkdocs build --strict` (broken links and anchors fail there)."""

from __future__ import annotations

import argparse
import re
import shlex
from dataclasses import fields
from pathlib import Path

import pytest

from assistant.cli import build_parser
from assistant.config import Settings

from .conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
PAGES = {path.relative_to(ROOT).as_posix(): path.read_text(encoding="utf-8")
         for path in sorted((ROOT / "docs").rglob("*.md"))}
DOCUMENTED = "\n".join([README, *PAGES.values()])
#: Sections that tools or other pages rewrite or read, each between its two markers, once.
MARKERS = {"ui": "docs/chat.md", "answers": "docs/command-line.md", "http": "docs/http.md",
           "openai": "docs/http.md", "mcp": "docs/http.md", "keys": "docs/deployment.md",
           "bench": "docs/benchmarks.md", "reliability": "docs/reliability.md"}
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.M | re.S)


def _subcommands(parser: argparse.ArgumentParser, prefix: str = "assistant") -> list[str]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append(f"{prefix} {name}")
                found += _subcommands(sub, f"{prefix} {name}")
    return found


def _blocks(*languages: str) -> list[tuple[str, str]]:
    """(file, code) of every fenced block in one of these languages, README and docs pages."""
    return [(name, match.group(2))
            for name, text in [("README.md", README), *PAGES.items()]
            for match in FENCE.finditer(text) if match.group(1) in languages]


def test_every_cli_command_is_documented() -> None:
    commands = _subcommands(build_parser())
    assert "assistant index update" in commands
    missing = [c for c in commands if c not in DOCUMENTED]
    assert not missing, f"README and docs/ lack {missing}"


def test_every_setting_is_in_the_configuration_page() -> None:
    table = PAGES["docs/configuration.md"]
    missing = [f"ASSISTANT_{f.name.upper()}" for f in fields(Settings)
               if f"ASSISTANT_{f.name.upper()}" not in table]
    assert not missing, f"docs/configuration.md's table lacks {missing}"


def test_the_two_commands_and_ci() -> None:
    assert "make run" in README and "make test" in README
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert "torch==2.13.0" in makefile and "-c constraints.txt" in makefile
    assert "playwright install" not in makefile
    test_recipe = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert "mkdocs build --strict" in test_recipe and "pytest" in test_recipe
    assert re.search(r"^docs:", makefile, re.M)
    dev_extra = (ROOT / "pyproject.toml").read_text().split("dev = [", 1)[1].split("]", 1)[0]
    assert '"mkdocs-material' in dev_extra and '"matplotlib' in dev_extra  # CI: a clean clone


def test_readme_is_a_front_door_to_the_docs() -> None:
    assert len(README.splitlines()) <= 150
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README)
    local = [link for link in links if "://" not in link]
    assert "docs/index.md" in local and "docs/benchmarks.md" in local
    broken = [link for link in local if not (ROOT / link).exists()]
    assert not broken, f"README links to missing files {broken}"
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for page in PAGES:
        if page.startswith("docs/") and page.count("/") == 1 and page != "docs/index.md":
            assert f"]({page})" in README, f"README does not lead to {page}"
            assert page.removeprefix("docs/") in nav, f"mkdocs.yml's nav lacks {page}"


@pytest.mark.parametrize("marker", sorted(MARKERS))
def test_marked_sections_live_in_their_page(marker: str) -> None:
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    assert DOCUMENTED.count(start) == DOCUMENTED.count(end) == 1, marker
    page = PAGES[MARKERS[marker]]
    assert page.find(start) < page.find(end), f"{marker} markers not in {MARKERS[marker]}"


def test_python_examples_compile() -> None:
    blocks = _blocks("python")
    assert len(blocks) >= 8
    for name, code in blocks:
        try:
            compile(code, name, "exec")
        except SyntaxError as exc:
            pytest.fail(f"{name}: a Python example does not compile: {exc}\n{code}")


def _command_path(words: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """The subcommands named at the start of `words`; fails on an unknown one."""
    path = []
    while words:
        choices = next((a.choices for a in parser._actions
                        if isinstance(a, argparse._SubParsersAction)), None)
        if choices is None:
            break
        assert words[0] in choices, f"`{words[0]}` is not a command after {path or 'assistant'}"
        path.append(words[0])
        parser = choices[words.pop(0)]
    return path


def test_shell_examples_name_real_commands() -> None:
    prompt = re.compile(r"^\s*(?:\$ )?(?:\S*/)?assistant (.*)$")
    lines = [(name, match.group(1))
             for name, code in _blocks("bash", "sh")
             for line in code.splitlines() if (match := prompt.match(line))]
    shown = re.compile(r"^    \$ assistant (.*)$")  # indented blocks: a command and its output
    lines += [(name, match.group(1)) for name, text in PAGES.items()
              for line in text.splitlines() if (match := shown.match(line))]
    assert len(lines) >= 20
    parser = build_parser()
    for name, rest in lines:
        words = shlex.split(rest.split("#", 1)[0], posix=True)
        assert _command_path(words, parser), f"{name}: `assistant {rest}` names no command"


def test_pages_are_where_mkdocs_looks() -> None:
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert "docs_dir: docs" in config and "name: material" in config
    for page in re.findall(r":\s*(\S+\.md)\s*$", config, re.M):
        assert Path(ROOT / "docs" / page).exists(), page
