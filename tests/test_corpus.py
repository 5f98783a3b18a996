"""Loader and cleaning: the seed articles and French edge cases."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from assistant.errors import ArticleError, CorpusError
from assistant.ingest.corpus import load_corpus, parse_article, read_article

from .conftest import DATA, SEED_CORPUS


def test_corpus_holds_the_five_seeds_untouched() -> None:
    seeds = SEED_CORPUS.parent.parent / "shared" / "seed-articles"
    if not seeds.is_dir():
        pytest.skip("shared/seed-articles is not beside this checkout")
    for original in seeds.iterdir():
        assert (SEED_CORPUS / original.name).read_bytes() == original.read_bytes()


def test_seed_titles_dates_and_boilerplate() -> None:
    articles, skipped = load_corpus(SEED_CORPUS)
    assert skipped == []
    by_source = {a.source: a for a in articles}
    assert len(by_source) == 5
    serre = by_source["serre-numerique-valenciennes.txt"]
    # The seed starts with an update-date line before its title.
    assert serre.title == "La Serre numérique : bateau amiral du Valenciennois connecté"
    assert serre.date == "2020-10-01"
    lens = by_source["louvre-lens-vallee-cluster-numerique.txt"]
    assert lens.title.startswith("Tops et flops du Louvre-Lens")
    for article in articles:
        assert "Sujets les + lus" not in article.text
        assert "Votre email ne sera pas affiché" not in article.text
        assert "A lire aussi" not in article.text
        assert article.text == article.text.strip()
        assert len(article.sha256) == 64
    # Article text survives cleaning: the last real sentence of the Lens article is kept.
    assert lens.text.endswith("comme le souhaitait Daniel Percheron.")


def test_cp1252_file_is_decoded_and_cleaned() -> None:
    article = read_article(DATA / "articles" / "accents-cp1252.txt", "accents-cp1252.txt")
    assert article.title == "L’État soutient l’œuvre des incubateurs"
    assert article.date == "2021-02-03"
    assert "2,5 M€" in article.text and "cœur" in article.text and "«" in article.text
    assert "A lire aussi" not in article.text
    assert "Commentaire" not in article.text
    assert article.text.endswith("numérique en Lorraine.")


def test_markdown_front_matter() -> None:
    article = read_article(DATA / "articles" / "front-matter.md", "front-matter.md")
    assert article.title == "La French Tech Est en chiffres"
    assert article.date == "2019-05-14"
    assert article.url == "https://example.org/french-tech-est"
    assert article.author == "Jeanne Martin"
    assert not article.text.startswith("---")
    assert "120 startups" in article.text


def test_html_main_text_extraction() -> None:
    article = read_article(DATA / "articles" / "page.html", "page.html")
    assert article.title == "Le hub numérique de Rennes"
    assert article.date == "2022-09-30"
    assert "Paul Lemoine" in article.text
    assert "Mentions légales" not in article.text
    assert "<p>" not in article.text


def test_nbsp_zero_width_and_typographic_apostrophe_are_kept_readable() -> None:
    raw = ("Un titre\n\nL\u2019\u00e9cole compte 17\u00a0000\u202fm\u00b2 et\u200b "
           "un c\u0153ur.").encode()
    article = parse_article(raw * 3, "x.txt")
    assert "\u200b" not in article.text
    assert "17\u00a0000\u202fm²" in article.text
    assert "L’école" in article.text


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "vide"),
        (b"   \n\t\n", "vide"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4, "binaire"),
        (b"ok", "aucun texte"),
    ],
)
def test_bad_files_raise_a_french_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(ArticleError, match=reason):
        parse_article(raw, "bad.txt")


def test_load_corpus_reports_and_skips_bad_files(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(SEED_CORPUS, corpus)
    (corpus / "vide.txt").write_bytes(b"")
    (corpus / "image.md").write_bytes(b"\x00\x01\x02binary\x00" * 100)
    (corpus / "notes.docx").write_bytes(b"PK\x03\x04")  # not an article type: ignored silently
    (corpus / "casse.pdf").write_bytes(b"%PDF-1.4")  # a PDF with no pages: reported
    (corpus / ".cache.txt").write_text("hidden")
    articles, skipped = load_corpus(corpus)
    assert len(articles) == 5
    assert sorted(s.source for s in skipped) == ["casse.pdf", "image.md", "vide.txt"]
    assert all(s.reason for s in skipped)


def test_missing_corpus_dir_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="n'existe pas"):
        load_corpus(tmp_path / "absent")
