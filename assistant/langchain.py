"""LangChain adapter: `AssistantRetriever`, a `BaseRetriever` over the hybrid index.

    from assistant.langchain import AssistantRetriever
    retriever = AssistantRetriever.from_settings(Settings(index_dir="index"), k=5)
    docs = retriever.invoke("Qui dirige la Louvre Lens Vallée ?")
    docs[0].metadata  # {"source", "title", "start", "end", "chunk_id", "score"}
    retriever.invoke("Qui dirige la Louvre Lens Vallée ?", k=2)   # k for one call

Filters by article and date (see `Assistant.search`), for every call in `search_kwargs` or for one
call as keyword arguments of `invoke` (which win):

    AssistantRetriever(assistant=bot, search_kwargs={"sources": ["serre-numerique-valenciennes"],
                                                     "since": "2020-01-01"})
    retriever.invoke("Quelle surface ?", sources=["lorntech-sillon-lorrain"], until="2021-12-31")

It passes LangChain's standard retriever tests (`langchain-tests`; tests/ runs them).

Needs the optional extra: pip install 'assistant[langchain]'.
"""

from __future__ import annotations

from typing import Any

from .config import Settings
from .core import Assistant
from .errors import missing_extra

try:
    from langchain_core.callbacks import (
        AsyncCallbackManagerForRetrieverRun,
        CallbackManagerForRetrieverRun,
    )
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever
    from langchain_core.runnables.config import run_in_executor
    from pydantic import Field, field_validator
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise missing_extra("langchain", "langchain-core") from exc


SEARCH_KEYS = frozenset({"k", "sources", "since", "until"})


class AssistantRetriever(BaseRetriever):
    """Documents carry the passage text; metadata holds source, title, offsets, id and score."""

    assistant: Any  # an assistant.Assistant (typed Any: pydantic needs no schema for it)
    k: int = 5
    #: Defaults for every call: `k`, `sources`, `since`, `until` (as in `Assistant.search`).
    search_kwargs: dict[str, Any] = Field(default_factory=dict)

    model_config = {"arbitrary_types_allowed": True}

    @field_validator("search_kwargs")
    @classmethod
    def _known_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - SEARCH_KEYS)
        if unknown:
            raise ValueError(f"search_kwargs inconnus : {', '.join(unknown)} (acceptés : "
                             f"{', '.join(sorted(SEARCH_KEYS))})")
        return value

    @classmethod
    def from_settings(cls, settings: Settings | None = None, *, k: int = 5,
                      search_kwargs: dict[str, Any] | None = None) -> AssistantRetriever:
        return cls(assistant=Assistant.load(settings), k=k, search_kwargs=search_kwargs or {})

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, k: int | None = None,
        sources: list[str] | None = None, since: str | None = None, until: str | None = None,
    ) -> list[Document]:
        """Arguments given to `invoke` beat `search_kwargs`, which beat the retriever's `k`."""
        given = {"k": k, "sources": sources, "since": since, "until": until}
        options = {"k": self.k, **self.search_kwargs,
                   **{key: v for key, v in given.items() if v is not None}}
        return [
            Document(
                page_content=p.text,
                metadata={"source": p.source, "title": p.title, "start": p.start,
                          "end": p.end, "chunk_id": p.chunk_id, "score": p.score},
            )
            for p in self.assistant.search(query, **options)
        ]

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun,
        k: int | None = None, sources: list[str] | None = None, since: str | None = None,
        until: str | None = None,
    ) -> list[Document]:
        return await run_in_executor(None, self._get_relevant_documents, query,
                                     run_manager=run_manager.get_sync(), k=k, sources=sources,
                                     since=since, until=until)
