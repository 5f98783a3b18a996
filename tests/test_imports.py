"""Cold start and module boundaries: what a fresh process imports, and who may import what.

`import assistant` and a search with the default (OpenVINO) backend run in fresh subprocesses,
since this test process has long imported everything. The boundaries are read from the source
with `ast`, imports inside functions included.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

from assistant import Settings

from .conftest import ROOT

#: Never imported by `import assistant`: each is loaded by the one code path that needs it.
HEAVY = ("torch", "transformers", "sentence_transformers", "langchain_text_splitters",
         "langchain_core", "faiss", "bm25s", "openvino", "onnxruntime", "tokenizers",
         "trafilatura", "pypdf", "gradio", "fastapi", "httpx", "scipy")
#: Never imported by a search with the default backend (the index and the exported model load
#: without them).
NOT_FOR_SEARCH = ("torch", "transformers", "sentence_transformers", "langchain_text_splitters",
                  "langchain_core", "langchain", "trafilatura", "gradio", "nncf", "optimum")
#: (package, the only module of the project allowed to import it)
OWNERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("faiss", ("assistant/index/dense/faiss_index.py",)),  # the FAISS store goes through it
    ("qdrant_client", ("assistant/index/qdrant_connection.py",
                       "assistant/index/qdrant_generations.py", "assistant/index/dense/qdrant.py",
                       "assistant/index/lexical/qdrant.py",
                       "assistant/index/qdrant_catalog.py")),  # the articles replicas read
    ("bm25s", ()),  # our segmented BM25 replaced it; the tests keep it as the scoring oracle
)


def fresh(code: str) -> dict[str, object]:
    """Run `code` in a new interpreter; it prints one JSON line last."""
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_import_assistant_loads_nothing_heavy() -> None:
    out = fresh(
        "import json, sys\n"
        "import assistant\n"
        f"loaded = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "missing = [n for n in assistant.__all__ if not hasattr(assistant, n)]  # lazy ones too\n"
        "print(json.dumps({'loaded': loaded, 'missing': missing}))\n"
    )
    assert out == {"loaded": [], "missing": []}


def test_search_with_the_default_backend_needs_no_torch_nor_splitter(
    seed_settings: Settings,
) -> None:
    assert Settings().embedding_backend != "torch"  # the default is an exported backend
    out = fresh(
        "import json, sys\n"
        "from assistant import Assistant, Settings\n"
        f"bot = Assistant.load(Settings(corpus_dir={str(seed_settings.corpus_dir)!r}, "
        f"index_dir={str(seed_settings.index_dir)!r}))\n"
        "hits = bot.search('Qui dirige la Louvre Lens Vallée ?', k=3)\n"
        f"print(json.dumps({{'loaded': [m for m in {NOT_FOR_SEARCH!r} if m in sys.modules],"
        " 'sources': [p.source for p in hits], 'faiss': 'faiss' in sys.modules}))\n"
    )
    assert out["loaded"] == []
    assert out["faiss"] is True  # the search really went through the index
    assert out["sources"] and "louvre-lens-vallee-cluster-numerique.txt" in out["sources"]


# -- boundaries, from the source ----------------------------------------------------------------
def imports(path: Path, package: tuple[str, ...] | None = None) -> list[tuple[str, bool]]:
    """(imported module, at module level?) for every import statement of `path`; relative
    imports are resolved against `package` (default: the package of `path` under ROOT)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    if package is None:
        package = path.relative_to(ROOT).with_suffix("").parts[:-1]
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = top and not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef
                                           | ast.Lambda)
            if isinstance(child, ast.Import):
                found.extend((alias.name, top) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = list(package[:len(package) - child.level + 1]) if child.level else []
                module = ".".join([*base, *([child.module] if child.module else [])])
                found.append((module, top))
                if not child.module:  # `from . import x`: x may be a module
                    found.extend((f"{module}.{alias.name}", top) for alias in child.names)
            visit(child, inner)

    visit(tree, True)
    return found


def sources(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def test_the_scan_sees_relative_lazy_and_nested_imports(tmp_path: Path) -> None:
    """The scanner itself, on a file written for it (so the boundary tests cannot pass empty)."""
    sample = tmp_path / "sample.py"
    sample.write_text("import faiss.contrib\nfrom . import store\n"
                      "try:\n    from ui import app\nexcept ImportError:\n    pass\n"
                      "def f():\n    import bm25s\n", encoding="utf-8")
    found = imports(sample, package=("assistant",))
    assert found == [("faiss.contrib", True), ("assistant", True), ("assistant.store", True),
                     ("ui", True), ("bm25s", False)]


def test_store_libraries_are_imported_by_their_store_only() -> None:
    """Only the FAISS store touches FAISS, only the Qdrant stores touch qdrant-client (benchmarks
    measuring FAISS itself, under bench/, are not the product)."""
    files = sources("assistant", "ui")
    assert len(files) > 20
    offenders = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in files for module, _ in imports(path)
        for package, owner in OWNERS
        if module.split(".")[0] == package and path.relative_to(ROOT).as_posix() not in owner
    ]
    assert offenders == []
    for package, owners in OWNERS:  # the owners really are where the package is used
        for owner in owners:
            assert any(m.split(".")[0] == package for m, _ in imports(ROOT / owner)), owner


def test_the_package_never_imports_the_web_edge() -> None:
    """`assistant/` does not import `ui/`; only the CLI may, inside the command that serves."""
    offenders = [
        f"{path.relative_to(ROOT)} imports {module}" + ("" if top else " (in a function)")
        for path in sources("assistant") for module, top in imports(path)
        if module.split(".")[0] == "ui"
        and (top or path.relative_to(ROOT).as_posix() != "assistant/cli.py")
    ]
    assert offenders == []
