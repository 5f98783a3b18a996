"""`assistant add`: files and web pages into the corpus, PDFs with their pages, per-item refusals.

Web pages come from a local HTTP server on 127.0.0.1 (http.server in a thread); the PDF is
written here by a minimal PDF generator (two text pages and a blank one).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from assistant import Settings
from assistant.index.builder import build, update
from assistant.index.catalog import Catalog
from assistant.index.generations import writer_lock
from assistant.ingest.add import ADDED, DUPLICATE, REFUSED, add_items, page_slug
from assistant.ingest.corpus import parse_article
from assistant.records import Passage, page_at

from .conftest import SEED_CORPUS

ARTICLE_HTML = """<!DOCTYPE html>
<html lang="fr"><head><meta charset="utf-8">
<title>Le phare numérique de Kerlaouen ouvre ses portes | Ouest Numérique</title>
<meta property="og:title" content="Le phare numérique de Kerlaouen ouvre ses portes">
<meta property="article:published_time" content="2024-03-05T08:00:00+01:00">
</head><body>
<nav><a href="/">Accueil</a> <a href="/economie">Économie</a>
<a href="/abonnement">S'abonner</a></nav>
<article>
<h1>Le phare numérique de Kerlaouen ouvre ses portes</h1>
<p class="date">Publié le 5 mars 2024</p>
<p>Installé dans l'ancien phare de Kerlaouen, près de Brest, un tiers-lieu consacré à la
robotique sous-marine a été inauguré mardi par la présidente de la région.</p>
<p>Le lieu accueille déjà quatorze jeunes entreprises qui conçoivent des drones capables
d'inspecter les câbles sous-marins et les éoliennes en mer. L'investissement atteint
3,2 millions d'euros, financés pour moitié par la métropole.</p>
<p>Sa directrice, Maëlle Guivarc'h, veut en faire « la vitrine bretonne de la mer connectée » :
un bassin d'essai de vingt mètres permet de tester les prototypes toute l'année.</p>
<p>Un programme de formation ouvrira en septembre pour soixante étudiants des écoles
d'ingénieurs de la région, avec des stages dans les entreprises résidentes.</p>
</article>
<footer>Mentions légales — Tous droits réservés — Newsletter</footer>
</body></html>
"""
EMPTY_HTML = "<html><head><title>Menu</title></head><body><nav>Accueil</nav></body></html>"
PDF_PAGE_1 = [
    "Rapport annuel de l'observatoire des territoires numériques",
    "Première partie : la Serre numérique de Valenciennes forme les créateurs de jeux vidéo.",
    "Les écoles du campus accueillent des étudiants venus de toute la région.",
    "Le bâtiment, une ancienne serre horticole, a été rénové pour accueillir des studios.",
    "Quatre entreprises du jeu vidéo y ont installé leurs équipes de développement.",
    "Un incubateur accompagne chaque année une dizaine de projets d'étudiants diplômés.",
    "La communauté d'agglomération finance les bourses et les loyers des jeunes pousses.",
]
PDF_PAGE_2 = [
    "Deuxième partie : le centre de calcul de Plouzané consomme onze mégawatts.",
    "Sa chaleur fatale chauffe la piscine municipale et quatre cents logements voisins.",
    "L'opérateur prévoit de doubler la puissance installée d'ici 2027.",
]


# -- a minimal PDF writer (pypdf reads PDFs; writing text with it is not simple) ---------------
def make_pdf(pages: list[list[str]], *, title: str | None = None) -> bytes:
    """A valid PDF, one text line per entry, Helvetica in WinAnsi encoding (accents work)."""

    def literal(text: str) -> bytes:
        raw = text.encode("cp1252")
        return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"

    objects: list[bytes] = [b"", b"", b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica "
                            b"/Encoding /WinAnsiEncoding >>"]
    kids = []
    for lines in pages:
        ops = (b"BT /F1 11 Tf 14 TL 56 780 Td\n"
               + b"".join(literal(line) + b" Tj T*\n" for line in lines) + b"ET")
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(ops), ops))
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources "
                       b"<< /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % len(objects))
        kids.append(len(objects))
    objects[0] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % k for k in kids), len(kids))
    info = b""
    if title:
        objects.append(b"<< /Title " + literal(title) + b" >>")
        info = b" /Info %d 0 R" % len(objects)
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R%s >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, info, xref)
    return bytes(out)


# -- a local web site -----------------------------------------------------------------------------
class _Site(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, kind: str, body: bytes, *, length: int | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        html = "text/html; charset=utf-8"
        if self.path == "/actu/phare-kerlaouen.html":
            body = ARTICLE_HTML.encode()
            self._send(200, html, body, length=len(body))
        elif self.path == "/ancien-lien":
            self.send_response(301)
            self.send_header("Location", "/actu/phare-kerlaouen.html")
            self.end_headers()
        elif self.path.startswith("/boucle"):
            self.send_response(302)
            self.send_header("Location", f"/boucle{len(self.path)}")
            self.end_headers()
        elif self.path == "/gros.html":  # no Content-Length: the body ends when the server closes
            self._send(200, html, b"<html><body><p>" + b"bla " * 100_000 + b"</p></body></html>")
        elif self.path == "/gros-annonce.html":
            self._send(200, html, b"<html></html>", length=50_000_000)
        elif self.path == "/coupe.html":  # announces 60 kB, sends 2 kB, hangs up
            self._send(200, html, ARTICLE_HTML.encode()[:2000], length=60_000)
        elif self.path == "/logo.png":
            self._send(200, "image/png", b"\x89PNG\r\n\x1a\n" + bytes(200), length=208)
        elif self.path == "/menu.html":
            self._send(200, html, EMPTY_HTML.encode(), length=len(EMPTY_HTML))
        else:
            self._send(404, "text/plain", b"introuvable", length=11)


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _corpus_files(settings: Settings) -> set[str]:
    return {p.name for p in settings.corpus_dir.iterdir()}


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("assistant")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "assistant.cli"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


# -- end to end, through the installed command ----------------------------------------------------
def test_cli_adds_a_page_and_a_pdf_then_search_finds_them(
    make_corpus: Callable[..., Settings], embedder: Any, site: str, tmp_path: Path,
) -> None:
    settings = make_corpus()
    build(settings, lambda: embedder, progress=False)
    seeds = _corpus_files(settings)
    outside = tmp_path / "a-ajouter"
    outside.mkdir()
    pdf = outside / "Rapport observatoire 2024.pdf"
    pdf.write_bytes(make_pdf([PDF_PAGE_1, PDF_PAGE_2, []], title="Rapport de l'observatoire"))
    (outside / "script.sh").write_text("echo bonjour\n")
    seed = sorted(SEED_CORPUS.glob("*.txt"))[0]
    shutil.copy(seed, outside / "copie.txt")
    where = ["--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir)]

    out = _cli("add", f"{site}/ancien-lien", str(pdf), str(outside / "script.sh"),
               str(outside / "copie.txt"), f"{site}/absent.html", "--json", *where)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    by_item = {r["item"]: r for r in report["items"]}
    page = by_item[f"{site}/ancien-lien"]
    assert page["status"] == ADDED
    assert page["source"] == "le-phare-numerique-de-kerlaouen-ouvre-ses-portes.md"
    assert by_item[str(pdf)] == {"item": str(pdf), "status": ADDED,
                                 "source": "Rapport-observatoire-2024.pdf", "reason": None}
    assert by_item[str(outside / "script.sh")]["status"] == REFUSED
    assert "type de fichier non accepté" in by_item[str(outside / "script.sh")]["reason"]
    dup = by_item[str(outside / "copie.txt")]
    assert (dup["status"], dup["source"]) == (DUPLICATE, seed.name)
    assert "doublon" in dup["reason"]
    assert by_item[f"{site}/absent.html"]["status"] == REFUSED
    assert "HTTP 404" in by_item[f"{site}/absent.html"]["reason"]
    assert report["index_error"] is None
    assert sorted(report["index"]["added_articles"]) == sorted(
        [page["source"], "Rapport-observatoire-2024.pdf"])
    assert _corpus_files(settings) == seeds | {page["source"], "Rapport-observatoire-2024.pdf"}

    # The page is saved as Markdown with a front matter: title, date, url (after the redirect).
    saved = (settings.corpus_dir / page["source"]).read_text(encoding="utf-8")
    front = yaml.safe_load(saved.split("---\n")[1])
    assert front["title"] == "Le phare numérique de Kerlaouen ouvre ses portes"
    assert str(front["date"]) == "2024-03-05"
    assert front["url"] == f"{site}/actu/phare-kerlaouen.html"
    assert "Maëlle Guivarc'h" in saved
    assert "Mentions légales" not in saved and "S'abonner" not in saved

    found = _cli("search", "tiers-lieu de robotique sous-marine à Kerlaouen", "--json", *where)
    assert found.returncode == 0, found.stderr
    passages = json.loads(found.stdout)
    assert passages[0]["source"] == page["source"]
    assert "page" not in passages[0]  # not a paged document

    found = _cli("search", "Combien de mégawatts consomme le centre de calcul de Plouzané ?",
                 "--json", *where)
    assert found.returncode == 0, found.stderr
    hit = json.loads(found.stdout)[0]
    assert hit["source"] == "Rapport-observatoire-2024.pdf"
    assert hit["title"] == "Rapport de l'observatoire"
    assert "onze mégawatts" in hit["text"]
    assert hit["page_end"] == 2 and hit["page"] in (1, 2)  # overlap may begin on page 1


def test_cli_text_output_and_exit_status(make_corpus: Callable[..., Settings], site: str,
                                         tmp_path: Path) -> None:
    """Everything refused: French lines, exit status 1, no file, index untouched (not built)."""
    settings = make_corpus()
    before = _corpus_files(settings)
    (tmp_path / "photo.png").write_bytes(b"\x89PNG")
    where = ["--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir)]
    out = _cli("add", str(tmp_path / "photo.png"), f"{site}/logo.png",
               str(tmp_path / "absent.txt"), *where)
    assert out.returncode == 1, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("refusé : ") and "type de fichier non accepté" in lines[0]
    assert "type de contenu non pris en charge (image/png)" in lines[1]
    assert "fichier introuvable" in lines[2]
    assert _corpus_files(settings) == before
    assert not settings.index_dir.exists()

    # Only duplicates: nothing to do, which is not a failure.
    seed = sorted(SEED_CORPUS.glob("*.txt"))[0]
    report = add_items(settings, [str(seed)], update_index=False)
    assert [r.status for r in report.items] == [DUPLICATE] and report.exit_status == 0
    assert "refusé : " in report.lines()[0] and "doublon" in report.lines()[0]


# -- refusals, one by one, without the model ------------------------------------------------------
def test_web_refusals_leave_no_file(make_corpus: Callable[..., Settings], site: str) -> None:
    settings = make_corpus().replace(max_upload_bytes=100_000)
    before = _corpus_files(settings)
    items = {
        f"{site}/absent": "erreur HTTP 404",
        f"{site}/logo.png": "type de contenu non pris en charge (image/png)",
        f"{site}/gros.html": "page trop grosse (plus de 100\u202f000 octets)",
        f"{site}/gros-annonce.html": "page trop grosse (50\u202f000\u202f000 octets",
        f"{site}/coupe.html": "téléchargement interrompu",
        f"{site}/boucle": "trop de redirections",
        f"{site}/menu.html": "aucun texte principal trouvé",
        "http://127.0.0.1:9/ferme": "URL injoignable",
        "ftp://127.0.0.1/article.html": "seules les URL http(s)",
    }
    report = add_items(settings, list(items), update_index=False, timeout=10)
    for result in report.items:
        assert result.status == REFUSED, result
        assert items[result.item] in (result.reason or ""), result
    assert report.exit_status == 1 and report.added == []
    assert _corpus_files(settings) == before  # no article, no temporary file
    assert not any(p.name.startswith(".") for p in settings.corpus_dir.iterdir())


def test_file_refusals_and_duplicates(make_corpus: Callable[..., Settings], site: str,
                                      tmp_path: Path) -> None:
    settings = make_corpus().replace(max_upload_bytes=5_000)
    seed = sorted(SEED_CORPUS.glob("*.txt"))[0]
    (tmp_path / seed.name).write_text("Un tout autre texte, assez long pour être un article. " * 3,
                                      encoding="utf-8")
    (tmp_path / "gros.txt").write_text("mot " * 2_000, encoding="utf-8")
    (tmp_path / "vide.md").write_text("   \n", encoding="utf-8")
    (tmp_path / "faux.pdf").write_bytes(b"%PDF-1.4\nceci n'est pas un PDF\n")
    (tmp_path / "scan.pdf").write_bytes(make_pdf([[], []]))
    (tmp_path / "dossier.txt").mkdir()
    report = add_items(settings, [
        str(seed), str(tmp_path / seed.name), str(tmp_path / "gros.txt"),
        str(tmp_path / "vide.md"), str(tmp_path / "faux.pdf"), str(tmp_path / "scan.pdf"),
        str(tmp_path / "dossier.txt"), f"{site}/actu/phare-kerlaouen.html",
        f"{site}/ancien-lien",  # the same page again, through a redirect: same bytes
    ], update_index=False)
    got = [(r.status, r.reason or "") for r in report.items]
    assert got[0][0] == DUPLICATE and report.items[0].source == seed.name
    assert got[1][0] == REFUSED and "existe déjà" in got[1][1]  # same name, other content
    assert "fichier trop gros" in got[2][1]
    assert "article illisible" in got[3][1] and "vide" in got[3][1]
    assert "PDF illisible" in got[4][1]
    assert "PDF sans texte" in got[5][1]
    assert "dossier" in got[6][1]
    assert got[7][0] == ADDED
    assert got[8][0] == DUPLICATE and report.items[8].source == report.items[7].source
    assert report.added == [report.items[7].source]
    assert report.exit_status == 0


def test_failed_index_update_keeps_the_files(
    make_corpus: Callable[..., Settings], embedder: Any, tmp_path: Path,
) -> None:
    """Another writer holds the index: the files stay added, the report says so, and the next
    `index update` indexes them."""
    settings = make_corpus()
    build(settings, lambda: embedder, progress=False)
    pdf = tmp_path / "rapport.pdf"
    pdf.write_bytes(make_pdf([PDF_PAGE_1, PDF_PAGE_2]))
    with writer_lock(settings.index_dir):
        report = add_items(settings, [str(pdf)], embedder=lambda: embedder, wait=0)
    assert report.added == ["rapport.pdf"] and report.index is None
    assert report.index_error and report.exit_status == 1
    assert any("NON mis à jour" in line and "assistant index update" in line
               for line in report.lines())
    assert (settings.corpus_dir / "rapport.pdf").read_bytes() == pdf.read_bytes()
    assert update(settings, lambda: embedder, progress=False).added == ["rapport.pdf"]


# -- PDF pages ------------------------------------------------------------------------------------
def test_pdf_pages_are_kept_through_the_catalog(
    make_corpus: Callable[..., Settings], embedder: Any,
) -> None:
    raw = make_pdf([[], PDF_PAGE_1, [], PDF_PAGE_2])  # blank pages keep the numbering true
    article = parse_article(raw, "rapport.pdf")
    assert article.page_starts is not None and len(article.page_starts) == 4
    second = article.text.index("Deuxième partie")
    assert page_at(article.page_starts, 0) == 2
    assert page_at(article.page_starts, second) == 4
    assert page_at(article.page_starts, second - 1) == 2  # the separator belongs to the page before
    assert article.text[article.page_starts[3]:].startswith("Deuxième partie")
    assert page_at(None, 10) is None

    settings = make_corpus(seeds=False)
    (settings.corpus_dir / "rapport.pdf").write_bytes(raw)
    (settings.corpus_dir / "note.txt").write_text(" ".join(PDF_PAGE_1), encoding="utf-8")
    build(settings, lambda: embedder, progress=False)
    db = Catalog.current(settings.index_dir)
    rows = db.chunks_by_id(range(1, 1000))
    db.close()
    assert {r[1] for r in rows.values()} == {"rapport.pdf", "note.txt"}
    for text, source, _, start, end, page, page_end in rows.values():
        if source == "note.txt":
            assert (page, page_end) == (None, None)
            continue
        assert article.text[start:end] == text
        assert (page, page_end) == (page_at(article.page_starts, start),
                                    page_at(article.page_starts, end - 1))
        assert page in (2, 4) and page_end in (2, 4)
        if "onze mégawatts" in text:
            assert page_end == 4
    assert {r[5] for r in rows.values() if r[1] == "rapport.pdf"} >= {2}

    # A passage across a page break names both pages.
    spanning = Passage(1, 1.0, "x", "rapport.pdf", "R", second - 5, second + 5,
                       *(page_at(article.page_starts, o) for o in (second - 5, second + 4)))
    assert (spanning.to_dict()["page"], spanning.to_dict()["page_end"]) == (2, 4)


@pytest.mark.parametrize(("title", "url", "slug"), [
    ("Le phare numérique : « ouvert » !", "http://x.fr/a", "le-phare-numerique-ouvert"),
    (None, "https://x.fr/actu/2024/la-serre-numerique.html", "la-serre-numerique"),
    ("", "https://www.exemple.fr/", "www-exemple-fr"),
    ("Œuvre " * 40, "http://x.fr/", "-".join(["oeuvre"] * 11)),  # cut at a word, <= 80
])
def test_page_slug(title: str | None, url: str, slug: str) -> None:
    assert page_slug(title, url) == slug


# -- two writers at once ------------------------------------------------------------------------
def test_two_writers_of_one_target_never_share_a_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two `assistant add` (threads here) write the same target at the same moment: both wait in
    fsync until the other has written too, so a shared temporary name would be truncated by one
    and renamed away under the other. Each writer must have its own hidden file: both succeed,
    the target holds one whole payload, and no temporary file is left."""
    from assistant.ingest import add as add_module

    target = tmp_path / "article.txt"
    payloads = [("Premier texte de l'article. " * 400).encode(),
                ("Second texte, plus long, de l'article. " * 500).encode()]
    both_written = threading.Barrier(2, timeout=10)
    real_fsync = os.fsync
    hidden: list[set[str]] = []

    def fsync_together(fd: int) -> None:
        both_written.wait()
        hidden.append({p.name for p in tmp_path.iterdir() if p.name.startswith(".")})
        real_fsync(fd)

    monkeypatch.setattr(add_module.os, "fsync", fsync_together)
    errors: list[BaseException] = []

    def write(raw: bytes) -> None:
        try:
            add_module.write_atomic(target, raw)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(raw,)) for raw in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert target.read_bytes() in payloads  # one whole payload, never a mix
    assert len(hidden[0]) == 2 and all(n.endswith(".part") for n in hidden[0])  # two names
    assert sorted(p.name for p in tmp_path.iterdir()) == ["article.txt"]  # nothing left over
