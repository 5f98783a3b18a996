"""French question answering over news articles about the French digital-innovation ecosystem.

    from assistant import Assistant, Settings
    bot = Assistant.load(Settings(corpus_dir="corpus", index_dir="index"))
    bot.search("Qui dirige la Louvre Lens Vallée ?", k=5)   # -> list[Passage]
    bot.ask("Qui dirige la Louvre Lens Vallée ?")            # -> Answer with [n] citations
"""

__version__ = "0.1.0"

from .config import Settings  # noqa: E402
from .core import Assistant  # noqa: E402
from .errors import (  # noqa: E402
    AssistantError,
    ConfigError,
    CorpusError,
    IndexCorruptError,
    IndexLockedError,
    IndexMismatchError,
    IndexMissingError,
    LLMError,
    QuestionError,
)
from .records import Answer, Article, Passage  # noqa: E402

__all__ = [
    "Answer", "Article", "Assistant", "AssistantError", "ConfigError", "CorpusError",
    "IndexCorruptError", "IndexLockedError", "IndexMismatchError", "IndexMissingError",
    "LLMError", "Passage", "QuestionError", "Settings", "__version__",
]
