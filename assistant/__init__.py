"""French question answering over news articles about the French digital-innovation ecosystem.

    from assistant import Assistant, Settings
    bot = Assistant.load(Settings(corpus_dir="corpus", index_dir="index"))
    bot.search("Qui dirige la Louvre Lens Vallée ?", k=5)   # -> list[Passage]
    bot.ask("Qui dirige la Louvre Lens Vallée ?")            # -> Answer with [n] citations
"""

import typing as _typing

from ._version import __version__
from .config import Settings
from .errors import (
    AssistantError,
    ConfigError,
    CorpusError,
    IndexCorruptError,
    IndexLockedError,
    IndexMismatchError,
    IndexMissingError,
    LLMError,
    QuestionError,
    StoreUnavailableError,
)
from .records import Answer, Article, Passage

if _typing.TYPE_CHECKING:
    from .core import Assistant

_LAZY = {"Assistant": "core"}  # imported on first use: `import assistant` stays light


def __getattr__(name: str) -> _typing.Any:
    if name in _LAZY:
        from importlib import import_module

        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "Answer", "Article", "Assistant", "AssistantError", "ConfigError", "CorpusError",
    "IndexCorruptError", "IndexLockedError", "IndexMismatchError", "IndexMissingError",
    "LLMError", "Passage", "QuestionError", "Settings", "StoreUnavailableError", "__version__",
]
