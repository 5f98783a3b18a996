"""The README stays true: every command, every setting and the two make targets are documented."""

from __future__ import annotations

import argparse
from dataclasses import fields

from assistant.cli import build_parser
from assistant.config import Settings

from .conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _subcommands(parser: argparse.ArgumentParser, prefix: str = "assistant") -> list[str]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append(f"{prefix} {name}")
                found += _subcommands(sub, f"{prefix} {name}")
    return found


def test_every_cli_command_is_in_the_readme() -> None:
    commands = _subcommands(build_parser())
    assert "assistant index update" in commands
    missing = [c for c in commands if c not in README]
    assert not missing, f"README lacks {missing}"


def test_every_setting_is_in_the_readme() -> None:
    missing = [f"ASSISTANT_{f.name.upper()}" for f in fields(Settings)
               if f"ASSISTANT_{f.name.upper()}" not in README]
    assert not missing, f"README configuration table lacks {missing}"


def test_the_two_commands_and_ci() -> None:
    assert "make run" in README and "make test" in README
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert "torch==2.13.0" in makefile and "-c constraints.txt" in makefile
    assert "playwright install" not in makefile
