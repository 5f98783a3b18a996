"""What an index's `manifest.json` must say to be usable with given settings.

Shared by the writer (`indexer`, which records it) and the reader (`retriever`, which checks it),
so that opening an index for a search never loads what only building one needs (the text
splitter, the corpus readers).
"""

from __future__ import annotations

from typing import Any

from ..config import Settings
from ..embed.base import embedding_identity
from ..errors import REBUILD_HINT, IndexMismatchError
from ..ingest.chunking import splitter_description
from ..text.analysis import analyzer_description
from ..text.sentences import SENTENCE_SPLITTER_VERSION


def expected_identity(settings: Settings) -> dict[str, Any]:
    """What the manifest of an index usable with `settings` must say."""
    return {
        "embedding": embedding_identity(settings),
        "chunking": splitter_description(settings),
        "analyzer": analyzer_description(),
        "sentences": {"splitter": SENTENCE_SPLITTER_VERSION},
    }


def differences(manifest: dict[str, Any], settings: Settings) -> dict[str, list[str]]:
    """section -> what differs ("key : index=..., réglage=...") between the index and what
    `settings` asks; empty when the index was built like `settings` asks."""
    found: dict[str, list[str]] = {}
    for section, wanted in expected_identity(settings).items():
        have = manifest.get(section, {})
        for key, value in wanted.items():
            if have.get(key) != value:
                found.setdefault(section, []).append(
                    f"{section}.{key} : index={have.get(key)!r}, réglage={value!r}")
    return found


#: Sections that only this package's code decides (never a setting): a difference there is an
#: upgrade of the package.
PACKAGE_RULES = frozenset({"analyzer", "sentences"})


def only_rules_changed(manifest: dict[str, Any], settings: Settings) -> bool:
    """Whether the index differs from `settings` only by this package's own text rules (the
    analyzer's, the sentence splitter's versions), not by the model or any setting: an
    upgrade, which a rebuild reusing every known vector fixes."""
    found = differences(manifest, settings)
    return bool(found) and set(found) <= PACKAGE_RULES


def check_compatible(manifest: dict[str, Any], settings: Settings) -> None:
    """IndexMismatchError naming what differs, unless the index was built like `settings` asks."""
    problems = [p for found in differences(manifest, settings).values() for p in found]
    if problems:
        raise IndexMismatchError(
            "L'index a été construit avec d'autres réglages ("
            + "; ".join(problems) + f"). {REBUILD_HINT}"
        )
