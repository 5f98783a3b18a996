"""The package's exceptions, one small tree. Every message says what to do next.

    AssistantError                 base: the edges (CLI, UI, HTTP) catch this one
    ├── ConfigError                a setting is invalid or an optional extra is missing
    ├── CorpusError                the corpus directory is missing or holds no readable article
    │   └── ArticleError           one article cannot be indexed (reported by name, skipped)
    ├── IndexError_                the index cannot be used
    │   ├── IndexMissingError      no index yet            -> assistant index build
    │   ├── IndexMismatchError     other model/splitter    -> assistant index build
    │   ├── IndexCorruptError      damaged files           -> assistant index build
    │   └── IndexLockedError       another writer is busy  -> wait, or retry later
    ├── StoreUnavailableError      a remote store (Qdrant) is unreachable or too slow -> its URL
    ├── QuestionError              empty or over-long question
    └── LLMError                   the LLM endpoint failed (the answerer falls back to extractive)
"""

from __future__ import annotations

REBUILD_HINT = "Lancez `assistant index build` pour reconstruire l'index."


class AssistantError(Exception):
    """Base class: anything the user can act on."""


class ConfigError(AssistantError):
    pass


class CorpusError(AssistantError):
    pass


class ArticleError(CorpusError):
    """An article that cannot be indexed; the message is the reason, in French."""


class IndexError_(AssistantError):  # noqa: N801 - avoid shadowing the builtin IndexError
    pass


class IndexMissingError(IndexError_):
    pass


class IndexMismatchError(IndexError_):
    pass


class IndexCorruptError(IndexError_):
    pass


class IndexLockedError(IndexError_):
    pass


class StoreUnavailableError(AssistantError):
    """A remote store (Qdrant) cannot be reached, refuses the key, or answers too slowly; the
    message names its URL. Nothing local was changed (CLI exit 1, HTTP 503)."""


class QuestionError(AssistantError):
    pass


class LLMError(AssistantError):
    pass


def missing_extra(extra: str, module: str) -> ConfigError:
    """The error raised when an optional dependency is not installed."""
    return ConfigError(
        f"Le module optionnel « {module} » manque : pip install 'assistant[{extra}]'"
    )
