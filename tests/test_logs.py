"""What the `assistant` command logs at its default level: our French messages, no debug lines
(ours or a library's); `-v` shows them."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from assistant import Settings

from .test_index import NEW_ARTICLE


def test_index_update_logs_no_library_debug_lines(make_corpus: Callable[..., Settings]) -> None:
    settings = make_corpus(seeds=False)
    (settings.corpus_dir / "campus-epinal.md").write_text(NEW_ARTICLE, encoding="utf-8")
    exe = Path(sys.executable).with_name("assistant")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "assistant.cli"]
    args = ["index", "update", "--corpus", str(settings.corpus_dir), "--index",
            str(settings.index_dir)]
    run = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "INFO assistant.index.builder" in run.stderr  # our own progress messages stay
    assert "DEBUG" not in run.stderr, run.stderr

    verbose = subprocess.run([*cmd, *args[:1], "build", *args[2:], "-v"], capture_output=True,
                             text=True, timeout=300)
    assert verbose.returncode == 0, verbose.stderr
    assert "DEBUG assistant.index.builder" in verbose.stderr  # -v shows what each store wrote
