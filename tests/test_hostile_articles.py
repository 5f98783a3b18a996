"""Hostile articles: whatever bytes the corpus holds, loading and chunking never blow up.

Property-based (hypothesis) on the loader and the chunker: the only exception is ArticleError,
chunk offsets always slice the article text exactly. Then French edge cases (encodings, ’, œ,
NBSP/NNBSP) and an index built over a corpus with bad files: the good ones are indexed, the bad
ones reported by name, nothing half-indexed.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from assistant import Assistant, Settings
from assistant.errors import ArticleError
from assistant.index.builder import build, update
from assistant.index.catalog import Catalog
from assistant.index.generations import current_marker
from assistant.ingest.chunking import chunk_article, make_splitter
from assistant.ingest.corpus import decode, load_corpus, normalize, parse_article
from assistant.records import Article
from assistant.text.analysis import analyze

PROPERTY = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SPLITTERS = {
    "default": make_splitter(Settings()),
    "tiny": make_splitter(Settings(chunk_size=50, chunk_overlap=10)),
    "no-overlap": make_splitter(Settings(chunk_size=120, chunk_overlap=0)),
    "max-overlap": make_splitter(Settings(chunk_size=60, chunk_overlap=59)),
    "large": make_splitter(Settings(chunk_size=2000, chunk_overlap=300)),
}
SIZES = {"default": 500, "tiny": 50, "no-overlap": 120, "max-overlap": 60, "large": 2000}
SUFFIXES = [".txt", ".md", ".markdown", ".html", ".htm", ".TXT", ".Md"]
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff\u00ad"

FRENCH_LETTERS = "abcdefghijklmnopqrstuvwxyzàâäçéèêëîïôöùûüÿœæÀÂÇÉÈÊËÎÔÙÛŒ"
FRAGMENTS = [
    "é", "œ", "€", "’", "'", "«\u00a0", "\u00a0»", "\u00a0", "\u202f", "\u2009", "…", "—",
    "17\u202f000\u00a0m²", "L’État", "l'innovation", "cœur", "\u200b", "\ufeff", "\u00ad",
    "\n", "\n\n", "\r\n", "\t", ". ", "? ", "! ", "; ", ": ", ", ", " ",
    "---\n", "title: Titre\n", "date: 2020-13-45\n", "date: 12/05/2021\n", "# Titre\n",
    "Mis à jour le 01/10/2020\n", "Publié le 3 février 2019\n", "À lire aussi : autre\n",
    "Commentaires (3)\n", "Partager cet article\n", "<p>", "</p>", "<html><body><article>",
    "<script>alert(1)</script>", "&nbsp;", "&eacute;", "\x00", "\x07", "\x1b[31m", "\ud7ff",
    "\U0001f600", "\u0301", "e\u0301", "\u2028", "\u061c", "\u202e",
]
french_text = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS),
              st.text(alphabet=FRENCH_LETTERS, min_size=1, max_size=15),
              st.text(max_size=20)),
    max_size=120,
).map("".join)
ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "cp1252", "latin-1"]


def encoded(text: str, encoding: str) -> bytes:
    return text.encode(encoding, errors="replace" if encoding in ("cp1252", "latin-1")
                       else "surrogatepass")


raw_files = st.one_of(
    st.binary(max_size=4000),
    st.builds(encoded, french_text, st.sampled_from(ENCODINGS)),
    st.builds(lambda a, b: a + b, st.builds(encoded, french_text, st.sampled_from(ENCODINGS)),
              st.binary(max_size=64)),
)


def check_article(article: Article, raw: bytes, source: str) -> None:
    assert article.source == source
    assert article.sha256 == hashlib.sha256(raw).hexdigest()
    assert len(re.findall(r"\w", article.text)) >= 20
    assert article.text == article.text.strip()
    assert "\r" not in article.text and "\t" not in article.text
    assert not set(article.text) & set(ZERO_WIDTH)
    assert not any(unicodedata.category(c) == "Cc" for c in article.text if c != "\n")
    assert unicodedata.is_normalized("NFC", article.text)
    assert isinstance(article.title, str) and len(article.title) <= 300
    assert article.date is None or re.fullmatch(r"\d{4}-\d{2}-\d{2}", article.date)


def check_chunks(article: Article, name: str, *, tiled: bool | None = None) -> None:
    """Exact offsets, in text order, within the size; `tiled`: every non-space char covered.

    Tiling is checked where the offsets are unambiguous (no chunk text occurs twice in the
    article) unless the caller asks for it: with text repeating in periods shorter than the
    overlap, a chunk's text may sit at several places and any of them is an exact offset.
    """
    text = article.text
    chunks = chunk_article(article, SPLITTERS[name])
    previous_start, previous_end = -1, -1
    covered = bytearray(len(text))
    for i, chunk in enumerate(chunks):
        assert chunk.ordinal == i and chunk.source == article.source
        assert 0 <= chunk.start < chunk.end <= len(text)
        assert text[chunk.start:chunk.end] == chunk.text
        assert chunk.text == chunk.text.strip()
        assert len(chunk.text) <= SIZES[name]
        assert chunk.start >= previous_start and chunk.end > previous_end  # in text order
        previous_start, previous_end = chunk.start, chunk.end
        covered[chunk.start:chunk.end] = b"\x01" * (chunk.end - chunk.start)
    if tiled is None:
        pieces = SPLITTERS[name].split_text(text)
        tiled = all(text.find(p, text.find(p) + 1) < 0 for p in pieces)
    if tiled:
        assert all(covered[i] or c.isspace() for i, c in enumerate(text)), "text left out"


# -- the loader --------------------------------------------------------------------------------
@PROPERTY
@given(raw=raw_files, suffix=st.sampled_from(SUFFIXES))
@example(raw=b"---\ndate: 2020-13-45\n---\n" + b"Un article de test assez long. " * 3,
         suffix=".md")
@example(raw=b"---\ntitle: " + b"[" * 3000 + b"\n---\n" + b"Un article de test assez long. " * 3,
         suffix=".md")
@example(raw=b"\xff\xfe" + "Un article en UTF-16 avec un é".encode("utf-16-le") + b"\x00\xd8",
         suffix=".txt")
@example(raw=b"\xef\xbb\xbf" + ZERO_WIDTH.encode() * 50, suffix=".txt")
@example(raw="\u00a0\u202f\u2009\n\t ".encode() * 40, suffix=".txt")
@example(raw="Le re\u200b\u0301seau des cafe\x07\u0301s numériques de l’État. ".encode() * 3,
         suffix=".txt")  # combining accent after a character that is removed: NFC still holds
def test_parse_article_only_raises_article_error(raw: bytes, suffix: str) -> None:
    source = "dossier/article" + suffix
    try:
        article = parse_article(raw, source)
    except ArticleError as exc:
        assert str(exc), "the reason is shown to the user"
        return
    check_article(article, raw, source)
    check_chunks(article, "default")


# A complete multi-byte UTF-8 sequence. A cp1252 file containing one (say "Ã©") is ambiguous:
# it decodes as UTF-8 there. French prose practically never has one ("é" is followed by an ASCII
# letter, a space or a punctuation byte that cannot continue it), so those few draws are set aside.
_VALID_UTF8_SEQUENCE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}"
    rb"|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}"
    rb"|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)

french_words = st.lists(
    st.one_of(st.text(alphabet=FRENCH_LETTERS, min_size=1, max_size=12),
              st.sampled_from([" ", ", ", ". ", "\n", "€ ", " ’a", "«\u00a0x\u00a0»", "17 000 m²",
                               "\u00a0: ", "Œuvre", "ÉTÉ"])),
    min_size=1, max_size=80,
).map("".join)


def single_byte(text: str, encoding: str) -> bytes:
    """`text` in cp1252/latin-1 (characters it lacks become "?"), if unambiguous."""
    raw = text.encode(encoding, errors="replace")
    assume(not _VALID_UTF8_SEQUENCE.search(raw))
    return raw


@PROPERTY
@given(text=french_words, encoding=st.sampled_from(ENCODINGS))
def test_decode_round_trips_french_text_in_every_supported_encoding(
    text: str, encoding: str
) -> None:
    assume(text.strip())
    if encoding in ("cp1252", "latin-1"):
        raw = single_byte(text, encoding)
        text = raw.decode(encoding)
    else:
        raw = text.encode(encoding)
    assert decode(raw) == text


@PROPERTY
@given(parts=st.lists(st.tuples(french_words, st.sampled_from(["utf-8", "cp1252"])),
                      min_size=2, max_size=6))
def test_decode_utf8_file_with_pasted_cp1252_bytes(parts: list[tuple[str, str]]) -> None:
    """A UTF-8 article with paragraphs pasted from a cp1252 source keeps all its accents."""
    raw, expected = b"", ""
    for text, encoding in parts:
        chunk = single_byte(text, "cp1252") if encoding == "cp1252" else text.encode("utf-8")
        raw += chunk + b"\n"
        expected += chunk.decode(encoding) + "\n"
    assume(expected.strip())
    assert decode(raw) == expected


def test_invisible_characters_do_not_split_words() -> None:
    article = parse_article("Le re\u200b\u0301seau numé\u00adrique du cafe\x07\u0301, "
                            "cœur de l’État\fnouvelle page.".encode(), "a.txt")
    assert "Le réseau numérique du café, cœur de l’État\nnouvelle page." == article.text
    assert analyze(article.text)[:3] == analyze("réseau numérique café")


@PROPERTY
@given(text=french_text, junk=st.lists(st.sampled_from(ZERO_WIDTH), max_size=30),
       data=st.data())
def test_zero_width_characters_vanish_without_splitting_words(
    text: str, junk: list[str], data: st.DataObject
) -> None:
    clean_text = normalize(text)
    dirty = list(clean_text)
    for char in junk:
        dirty.insert(data.draw(st.integers(0, len(dirty))), char)
    assert normalize("".join(dirty)) == clean_text


@pytest.mark.parametrize("raw, reason", [
    (b"", "fichier vide"),
    (b" \n\r\n\t  \n", "fichier vide"),
    ("\u00a0\u202f \n".encode() * 100, "aucun texte"),
    (ZERO_WIDTH.encode() * 100, "aucun texte"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4, "binaire"),
    (bytes(range(1, 32)) * 50, "binaire ou corrompu"),
    (b"\xff\xfe" + b"\x00\xd8a\x00", "UTF-16 invalide"),
    (b"Bonjour.", "aucun texte"),
])
def test_unusable_files_get_a_french_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(ArticleError, match=reason):
        parse_article(raw, "x.txt")


def test_html_without_article_text_is_refused() -> None:
    html = b"<html><head><title>Accueil</title></head><body><nav>Menu</nav></body></html>"
    with pytest.raises(ArticleError, match="aucun texte"):
        parse_article(html, "page.html")


@pytest.mark.parametrize("front_matter", [
    "date: 2020-13-45",  # YAML turns it into a date: ValueError, not a YAMLError
    "date: 2021-02-30",
    "title: " + "[" * 3000,
    "title: [[[[",
    "x: !!python/object/apply:os.system ['echo pwned']",
    "- une\n- liste",
    "title: 42\ndate: 2021-05-12",
])
def test_front_matter_never_escapes_as_another_exception(front_matter: str) -> None:
    raw = f"---\n{front_matter}\n---\n" + "Un article de test assez long pour être lu. " * 3
    try:
        article = parse_article(raw.encode(), "a.md")
    except ArticleError as exc:
        assert "en-tête YAML invalide" in str(exc)
    else:
        check_article(article, raw.encode(), "a.md")


# -- the chunker -------------------------------------------------------------------------------
periodic_text = st.builds(
    lambda unit, times, tail: unit * times + tail,
    st.text(alphabet=" ab.é\n;,\u00a0\u202f", min_size=1, max_size=12), st.integers(1, 300),
    st.text(max_size=20),
)


@PROPERTY
@given(text=st.one_of(french_text, periodic_text), name=st.sampled_from(list(SPLITTERS)))
@example(text="\u00a0".join(["17\u202f000\u00a0m²"] * 200), name="max-overlap")
@example(text=";" * 50 + " ", name="tiny")
@example(text="000" + "\u00a0" * 48 + "00", name="max-overlap")
def test_chunk_offsets_are_exact(text: str, name: str) -> None:
    check_chunks(Article("a.txt", "t", text, "0"), name)


@pytest.mark.parametrize("text", [
    "Le numérique avance. " * 60,
    ("Une phrase répétée. " * 40 + "\n\n") * 5,
    "a" * 5000,
    "\n\n".join(["Paragraphe repris tel quel d'une dépêche à l'autre, " * 8] * 4),
])
@pytest.mark.parametrize("name", ["default", "tiny", "no-overlap"])
def test_repeated_text_gets_its_real_offsets(text: str, name: str) -> None:
    """Text that repeats is tiled in order (the first copy after the previous chunk's start is
    usually an earlier copy: offsets then pointed back into text already chunked)."""
    check_chunks(Article("a.txt", "t", text, "0"), name, tiled=True)


@PROPERTY
@given(raw=raw_files, name=st.sampled_from(list(SPLITTERS)))
def test_parse_then_chunk_any_bytes(raw: bytes, name: str) -> None:
    try:
        article = parse_article(raw, "a.txt")
    except ArticleError:
        return
    check_chunks(article, name)


@pytest.mark.slow
def test_huge_line_and_very_long_article() -> None:
    line = ("L’écosystème numérique français\u00a0: 17\u202f000\u00a0m² d’innovation, "
            "cœur de la French\u00a0Tech ") * 4000  # ~400k characters, one line
    article = parse_article(line.encode("utf-8"), "ligne.txt")
    check_chunks(article, "default")
    long_text = "\n\n".join(
        " ".join([f"Paragraphe {i} : la Serre numérique de Valenciennes accueille des start-up."]
                 * 6)
        for i in range(4000)
    )  # ~1.9 MB
    article = parse_article(long_text.encode("cp1252"), "long.txt")
    assert article.text == long_text
    chunks = chunk_article(article, SPLITTERS["default"])
    assert len(chunks) > 3000
    assert all(article.text[c.start:c.end] == c.text for c in chunks)


# -- French edge cases -------------------------------------------------------------------------
FRENCH = ("Mis à jour le 01/10/2020\nLa Serre numérique : cœur de l’État numérique\n\n"
          "Ce lieu de 17\u202f000\u00a0m² a coûté 34\u00a0millions d’euros "
          "(34\u202f000\u202f000 €). "
          "« L’œuvre est là », dit-elle ; l'équipe, elle, s’y installe dès l’été.")


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "cp1252"])
def test_french_article_decoded_in_each_encoding(encoding: str) -> None:
    # cp1252 has NBSP but no NNBSP (U+202F).
    text = FRENCH.replace("\u202f", "\u00a0") if encoding == "cp1252" else FRENCH
    article = parse_article(text.encode(encoding), "serre.txt")
    assert article.text == text
    for expected in ("é", "œ", "€", "’", "«", "17\u00a0000\u00a0m²" if encoding == "cp1252"
                     else "17\u202f000\u00a0m²"):
        assert expected in article.text
    assert article.title == "La Serre numérique : cœur de l’État numérique"
    assert article.date == "2020-10-01"


def test_latin1_file_decoded() -> None:
    text = "Le cœur de l'été à Valenciennes : élèves, maîtres et ingénieurs réunis ici."
    raw = text.replace("œ", "oe").encode("latin-1")
    assert b"\xe9" in raw  # é as one latin-1 byte, not valid UTF-8
    assert parse_article(raw, "ete.txt").text == text.replace("œ", "oe")


def test_french_normalisation_for_search() -> None:
    assert analyze("L’État") == analyze("l'État") == analyze("l'etat") == analyze("L'ETAT")
    assert analyze("cœur") == analyze("coeur")
    assert analyze("17\u202f000\u00a0m²") == analyze("17 000 m²")
    assert analyze("jusqu’à l’innovation") == analyze("jusqu'a l'innovation")
    # NFD input (e + combining accent), as some editors save it, reads like NFC once loaded.
    decomposed = unicodedata.normalize("NFD", FRENCH)
    assert parse_article(decomposed.encode(), "nfd.txt").text == parse_article(
        FRENCH.encode(), "nfc.txt").text


# -- a corpus with bad files, indexed ----------------------------------------------------------
BAD_FILES: dict[str, bytes] = {
    "binaire.txt": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8,
    "vide.md": b"",
    "blancs.txt": b"   \n\n\t\n",
    "utf16-casse.txt": b"\xff\xfe" + "Un article".encode("utf-16-le") + b"\x00\xd8\x41",
    "controles.txt": bytes(range(1, 9)) * 300,
    "entete-date.md": b"---\ndate: 2020-13-45\n---\n" + b"Un article valide. " * 10,
    "menu.html": b"<html><body><nav>Accueil | Contact</nav></body></html>",
    "sous-dossier/court.txt": b"Trop court.",
}
CP1252_SOURCE = "cp1252-tourcoing.txt"
CP1252_ARTICLE = ("Plaine Images à Tourcoing\n\nÀ Tourcoing, Plaine Images réunit des studios "
                  "d’animation et de jeu vidéo. Le cœur du site : 100 000 m² et un budget de "
                  "12 millions d’€ pour l’œuvre commune des créateurs « émergents ».")


def write_bad_files(corpus: Path) -> None:
    for name, data in BAD_FILES.items():
        (corpus / name).parent.mkdir(parents=True, exist_ok=True)
        (corpus / name).write_bytes(data)


def indexed_sources(settings: Settings) -> dict[str, int]:
    """source -> number of chunk rows, read straight from the served generation's catalog."""
    catalog = Catalog.current(settings.index_dir)
    try:
        return {a["source"]: a["chunks"] for a in catalog.articles()}
    finally:
        catalog.close()


def test_load_corpus_reports_each_bad_file_by_name(tmp_path: Path) -> None:
    write_bad_files(tmp_path)
    (tmp_path / CP1252_SOURCE).write_bytes(CP1252_ARTICLE.encode("cp1252"))
    articles, skipped = load_corpus(tmp_path)
    assert [a.source for a in articles] == [CP1252_SOURCE]
    assert sorted(s.source for s in skipped) == sorted(BAD_FILES)
    assert all(s.reason for s in skipped)
    assert "€" in articles[0].text and "œ" in articles[0].text


@pytest.mark.slow
def test_index_over_a_corpus_with_bad_files(
    seed_settings: Settings, embedder: Any, tmp_path: Path
) -> None:
    settings = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index")
    shutil.copytree(seed_settings.corpus_dir, settings.corpus_dir)
    shutil.copytree(seed_settings.index_dir, settings.index_dir)  # its embedding cache helps
    write_bad_files(settings.corpus_dir)
    (settings.corpus_dir / CP1252_SOURCE).write_bytes(CP1252_ARTICLE.encode("cp1252"))
    seeds = sorted(p.name for p in seed_settings.corpus_dir.iterdir())

    report = build(settings, lambda: embedder, progress=False)
    assert sorted(report.added) == sorted([*seeds, CP1252_SOURCE])
    assert sorted(s.source for s in report.skipped) == sorted(BAD_FILES)
    assert {s.source: s.reason for s in report.skipped}["entete-date.md"].startswith(
        "en-tête YAML invalide")
    rows = indexed_sources(settings)
    assert sorted(rows) == sorted([*seeds, CP1252_SOURCE])  # nothing of a bad file
    assert all(n > 0 for n in rows.values())
    bot = Assistant.load(settings, embedder=embedder)
    best = bot.search("budget de Plaine Images à Tourcoing", 1)[0]
    assert best.source == CP1252_SOURCE and "d’€" in best.text and "cœur" in best.text

    # An update that finds only the same unreadable files has nothing to publish.
    marker = current_marker(settings.index_dir)
    again = update(settings, lambda: embedder, progress=False)
    assert again.generation is None and current_marker(settings.index_dir) == marker
    assert sorted(s.source for s in again.skipped) == sorted(BAD_FILES)

    # An indexed article that turns unreadable keeps its last good version.
    (settings.corpus_dir / CP1252_SOURCE).write_bytes(b"\x00\x01\x02" * 1000)
    changed = update(settings, lambda: embedder, progress=False)
    assert CP1252_SOURCE in {s.source for s in changed.skipped}
    assert CP1252_SOURCE not in changed.changed and CP1252_SOURCE in indexed_sources(settings)

    # The real command lists what it skipped, by name, with the reason, and exits 0.
    command = Path(sys.executable).with_name("assistant")
    result = subprocess.run(
        [*([str(command)] if command.exists() else [sys.executable, "-m", "assistant.cli"]),
         "index", "update", "--json", "--corpus", str(settings.corpus_dir),
         "--index", str(settings.index_dir)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(result.stdout)
    skipped = {s["source"]: s["reason"] for s in data["skipped"]}
    assert sorted(skipped) == sorted([*BAD_FILES, CP1252_SOURCE])
    assert skipped["binaire.txt"] == "fichier binaire, pas du texte"
    assert "Article ignoré : sous-dossier/court.txt" in result.stderr
    assert "Traceback" not in result.stderr
