"""LangChain's own standard tests for retrievers (`langchain-tests`) on `AssistantRetriever`,
built on the seed index, on each store backend (local files, Qdrant)."""

from __future__ import annotations

import functools
from typing import Any

import anyio
import pytest
from langchain_tests.integration_tests import RetrieversIntegrationTests

from assistant import Assistant
from assistant.langchain import AssistantRetriever


@pytest.mark.anyio
class TestAssistantRetrieverStandard(RetrieversIntegrationTests):
    @pytest.fixture(autouse=True)
    def _seed(self, backend_assistant: Assistant) -> None:  # on each store backend
        self.assistant = backend_assistant

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"

    @property
    def retriever_constructor(self) -> type[AssistantRetriever]:
        return AssistantRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"assistant": self.assistant, "k": 5}

    @property
    def retriever_query_example(self) -> str:
        return "Quelle est la surface de la Serre numérique de Valenciennes ?"


def test_invoke_k_beats_the_constructor_k(backend_assistant: Assistant) -> None:
    seed_assistant = backend_assistant
    retriever = AssistantRetriever(assistant=seed_assistant, k=4)
    question = "Qui dirige la Louvre Lens Vallée ?"
    assert len(retriever.invoke(question)) == 4
    docs = retriever.invoke(question, k=2)
    assert len(docs) == 2
    assert [d.metadata["chunk_id"] for d in docs] == [
        p.chunk_id for p in seed_assistant.search(question, k=2)]
    docs = anyio.run(functools.partial(retriever.ainvoke, question, k=1))
    assert [d.metadata["chunk_id"] for d in docs] == [
        p.chunk_id for p in seed_assistant.search(question, k=1)]
