"""LangChain adapter: `AssistantRetriever`, a `BaseRetriever` over the hybrid index.

    from assistant.langchain import AssistantRetriever
    retriever = AssistantRetriever.from_settings(Settings(index_dir="index"), k=5)
    docs = retriever.invoke("Qui dirige la Louvre Lens Vallée ?")
    docs[0].metadata  # {"source", "title", "start", "end", "chunk_id", "score"}
    retriever.invoke("Qui dirige la Louvre Lens Vallée ?", k=2)   # k for one call

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
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise missing_extra("langchain", "langchain-core") from exc


class AssistantRetriever(BaseRetriever):
    """Documents carry the passage text; metadata holds source, title, offsets, id and score."""

    assistant: Any  # an assistant.Assistant (typed Any: pydantic needs no schema for it)
    k: int = 5

    model_config = {"arbitrary_types_allowed": True}

    @classmethod
    def from_settings(cls, settings: Settings | None = None, *, k: int = 5) -> AssistantRetriever:
        return cls(assistant=Assistant.load(settings), k=k)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, k: int | None = None
    ) -> list[Document]:
        """`k` given to `invoke` beats the retriever's own."""
        return [
            Document(
                page_content=p.text,
                metadata={"source": p.source, "title": p.title, "start": p.start,
                          "end": p.end, "chunk_id": p.chunk_id, "score": p.score},
            )
            for p in self.assistant.search(query, k=self.k if k is None else k)
        ]

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun,
        k: int | None = None,
    ) -> list[Document]:
        return await run_in_executor(None, self._get_relevant_documents, query,
                                     run_manager=run_manager.get_sync(), k=k)
