"""A serving process gives the C allocator's free memory back after each index update
(`assistant/allocator.py`; measured by `bench/soak.py`)."""

from __future__ import annotations

import platform
import sys
from collections.abc import Callable
from typing import Any

import pytest

import assistant.core
from assistant import Assistant, Settings
from assistant.allocator import release_free_memory
from assistant.index.builder import build

from .test_index import NEW_ARTICLE


def test_release_free_memory_where_glibc_can() -> None:
    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert release_free_memory() is glibc
    assert release_free_memory() is glibc  # again: harmless


def test_an_update_then_gives_free_memory_back(make_corpus: Callable[..., Settings],
                                               embedder: Any,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_corpus()
    build(settings, lambda: embedder, progress=False)
    bot = Assistant.load(settings, embedder=embedder)
    calls: list[str] = []  # the generation served when the memory is given back

    def release() -> bool:
        calls.append(bot.retriever.index.name)
        return True

    monkeypatch.setattr(assistant.core, "release_free_memory", release)
    served = bot.retriever.index.name
    (settings.corpus_dir / "campus.md").write_text(NEW_ARTICLE, encoding="utf-8")
    report = bot.update_index(wait=5)
    assert report.added == ["campus.md"]
    assert calls and calls[0] != served  # after the switch to the new generation
