"""Where in a sentence is the fact a question asks: spans of the asked kind, and how close each
is to the words of what is asked.

    "Quel est le budget annuel du laboratoire ?" (money, focus: budget, annuel, laboratoire)
    "Le laboratoire fonctionne avec un budget annuel de 680 000 euros."
                                        ^^^^^^^^^^^^^  focus words, then the span
                                                          ^^^^^^^^^^^^^  "680 000 euros"

`fact_spans(kind, sentence, question)` lists the spans of the kind asked (figures with their unit
for a number, an amount or an area; dates; people's names; other names; places) that the
question does not already hold. `slot(...)` scores each by its distance in words to the nearest
word of what is asked (`focus` terms, analysed), and says whether the unit a kind-only attribute
implies is there ("Quel âge ?" wants "... ans"). The best span is the short answer shown first
(`answer/extractive.py`); the best score is evidence for the pair scorer (`answer/pairs.py`):
a near-domain question finds its topic's sentence, rarely a fact of its kind beside its words.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache

from .analysis import STOPWORDS, analyze, data_lines, fold_accents, strip_elision
from .kinds import BEFORE_NOUN, CARDINALS, folded_question
from .question import attribute_matches, matches

_S = "[ \u00a0\u202f]"
_SPELLED_NUMBER = (r"(?:" + "|".join(CARDINALS) +
                   r"|une (?:dizaine|douzaine|quinzaine|vingtaine|trentaine|quarantaine"
                   r"|cinquantaine|soixantaine|centaine)|un millier"
                   r"|(?:plusieurs|des) (?:dizaines|centaines|milliers)"
                   r"|un tiers|deux tiers|un quart|trois quarts|la moitié|un cinquième)")
# "vingt-deux", "dix-huit", "soixante-et-onze": one figure
_SPELLED_FIGURE = (rf"{_SPELLED_NUMBER}(?:-(?:et-)?(?:un|une|{_SPELLED_NUMBER}))*"
                   rf"(?:{_S}(?:cents?|mille))?")
_DIGITS = r"\d{1,3}(?:[ \u00a0\u202f.]\d{3})+(?:,\d+)?|\d+(?:[.,]\d+)?"
# a figure, its magnitude ("1,2 million d'euros", "3 M€") and up to three words of what it counts
_FIGURE = re.compile(
    rf"(?<![\w.,])(?:(?:plus|moins) de{_S}+|près de{_S}+|environ{_S}+)?"
    rf"(?:{_DIGITS}|(?i:{_SPELLED_FIGURE}))(?![\w,-])"
    rf"(?:{_S}*(?:%|€|k€|M€|m²|m2|km²|ha\b|(?i:mètres{_S}+carrés|hectares?)"
    rf"|(?i:millions?|milliards?)(?:{_S}+d['’]euros)?))?"
)
_UNIT_WORDS = re.compile(rf"(?:{_S}*(?:d['’]|de{_S}+|des{_S}+)?(?:[\w’'-]+))")
_STOP_AFTER = frozenset("""et ou à a au aux en dans pour par sur avec qui que dont ont est sont
ce cette ces il elle ils elles le la les l un une se sa son ses leur leurs du des de d""".split())
_MONTH = (r"janvier|février|fevrier|mars|avril|mai|juin|juillet|août|aout|septembre|octobre"
          r"|novembre|décembre|decembre")
_DATE_SPAN = re.compile(
    rf"(?i:(?:(?:le|du){_S}+)?\d{{1,2}}(?:er)?(?:{_S}*(?:-|–|au|et){_S}*\d{{1,2}}(?:er)?)?"
    rf"{_S}+(?:{_MONTH})(?:{_S}+\d{{4}})?"
    rf"|(?:en{_S}+|depuis{_S}+|dès{_S}+|fin{_S}+|début{_S}+)?(?:{_MONTH}){_S}+\d{{4}}"
    rf"|\d{{1,2}}/\d{{1,2}}/\d{{2,4}}"
    rf"|(?:en|depuis|dès|fin|début|d['’]ici){_S}+(?:1[89]|20)\d\d)\b"
    r"|\b(?:1[89]|20)\d\d\b"
)
_NAME_WORD = r"[A-ZÀ-ÖØ-Þ][\w’'-]*(?:[ \u00a0]\d+\b)?"
_LINK = rf"(?:{_S}+(?:de{_S}+la|de{_S}+l['’]|de|du|des|d['’]|la|le|l['’]|et|-|sur|en|&)?{_S}*)"
_NAME_RUN = re.compile(rf"(?<![\w-]){_NAME_WORD}(?:{_LINK}{_NAME_WORD})*")
_PERSON = re.compile(
    rf"(?<![\w’'-])[A-ZÀ-ÖØ-Þ][a-zà-öø-ÿ]+(?:-[A-ZÀ-ÖØ-Þ][a-zà-öø-ÿ]+)?"
    rf"(?:{_S}+(?:de{_S}+|d['’]|Le{_S}+|La{_S}+)?[A-ZÀ-ÖØ-Þ][\w’'-]+)+"
    # in capitals, as a caption or an interview's heading writes it: "MICHEL HEINRICH"
    rf"|(?<![\w’'-])[A-ZÀ-ÖØ-Þ]{{2,}}(?:-[A-ZÀ-ÖØ-Þ]{{2,}})?(?:{_S}+[A-ZÀ-ÖØ-Þ]{{2,}}"
    rf"(?:-[A-ZÀ-ÖØ-Þ]{{2,}})?)+(?![\w’'-])"
)
_GEO = (r"rue|quai|place|avenue|boulevard|allée|cours|chemin|route|quartier|col|mont|lac|port"
        r"|parc|zone|site|campus|technopôle|technopole|île|plateau|vallée|faubourg|halles?"
        r"|hauteurs|parvis|rive|berges|colline|gare|pays")
_PLACE = re.compile(rf"(?<![\w])(?:(?:à|au|aux|en|dans|près de|sur)(?={_S})|(?:{_GEO})(?={_S}))"
                    rf"(?:{_S}+(?:{_GEO}))?"
                    rf"(?:{_S}+(?:de{_S}+)?(?:l['’]|la|le|les|du|de la|des|de|d['’]))?"
                    rf"{_S}*{_NAME_WORD}(?:{_LINK}{_NAME_WORD})*")
#: A place described rather than named: the former building a lieu occupies ("dans une ancienne
#: corderie du port de pêche, ..."), up to the end of its clause.
_FORMER_PLACE = re.compile(
    rf"(?<![\w])(?:dans|sur|à|au sein d['’]){_S}+((?:un|une|l['’]|le|la|les|des){_S}*"
    rf"(?:ancien|ancienne|anciens|anciennes|vieux|vieil|vieille|vieilles|ex-)[^,;:.()«»\"]{{3,90}})",
    re.IGNORECASE)
_FREQUENCY = re.compile(
    r"\btous les (?:\w+\s+)?(?:ans|mois|jours|semaines|trimestres|semestres|années)\b"
    r"|\bchaque (?:année|an|mois|semaine|jour|trimestre|semestre)\b|\b\w+ fois par \w+\b"
    r"|\b(?:annuel|mensuel|hebdomadaire|quotidien|trimestriel|semestriel|biennal)(?:le)?s?\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"[\w’'-]+")
_TOKEN = re.compile(r"[\w’'-]+|[,;:(]")
#: A role just before a name: the name is a person's ("sa directrice Malika Aït", "M. Durand").
_ROLE_BEFORE = re.compile(
    r"\b(?:directeur|directrice|président|présidente|fondateur|fondatrice|cofondateur"
    r"|cofondatrice|co-fondateur|co-fondatrice|maire|adjoint|adjointe|responsable|patron"
    r"|patronne|délégué|déléguée|ministre|député|députée|sénateur|sénatrice|gérant|gérante"
    r"|chargé|chargée|secrétaire|trésorier|trésorière|M\.|Mme|Mr)[\s\u00a0,]*$",
    re.IGNORECASE)

#: An age as articles state it: alone, after a comma or a parenthesis ("Inès Barjavel, 38 ans,"),
#: "de" ("cet ingénieur de 46 ans", "âgés de 19 à 54 ans"), "à" ("À 47 ans"), a form of "avoir"
#: ("j'ai 54 ans", "qui a 91 ans") or "ses" ("fête ses dix ans"); not a length of time ("il faut
#: cinq ou six ans pour", "pendant huit ans", "il y a deux ans", "d'ici à cinq ans", "en moins
#: de deux ans", "vingt ans de métier").
_AGE = re.compile(
    rf"(?:^{_S}*|[,(]{_S}*|(?:(?<![\w’'])(?:(?<!ici )à|(?<!plus )(?<!moins )(?<!près )(?<!amis )de"
    rf"|ses|(?<!y )a|avait|aura)|j['’]ai){_S}+)"
    rf"(?P<figure>\d+|(?i:{_SPELLED_FIGURE})){_S}+ans\b(?!{_S}+d(?:e\b|['’]))",
    re.IGNORECASE)

#: A person named as a role's former holder, in the clause before the name: "son prédécesseur,
#: Corentin ...", "Le premier directeur, Armand ...", "il a succédé à la première directrice du
#: laboratoire, Hermine ...".
_FORMER_BEFORE = re.compile(
    r"\b(?:prédécesseur|prédécesseure|ancien|ancienne|ex|premier|première|précédent|précédente"
    r"|succédé|succède|remplace|remplacé|remplacée)\b[^.;:!?«»()]{0,40}$", re.IGNORECASE)
#: A question that asks about a former holder (or a first one, a founder): "Qui dirigeait ...
#: avant ... ?", "Qui était le premier directeur ... ?" (folded, as `folded_question` writes it).
_FORMER_ASKED = re.compile(
    r"\b(?:ancien|ancienne|avant|premier|premiere|precedent|precedente|predecesseur|succede"
    r"|etait|dirigeait|presidait|avait|a dirige|a preside|fonde|fondateur|fondatrice"
    r"|cofondateur|cofondatrice|cree|former|previous|first|before|was|founded|founder)\b")
#: A quotation's end and a verb of speech, right before a name.
_SPEAKER_BEFORE = re.compile(
    r"[»”\"]\s*,?\s*(?:dit|explique|indique|précise|souligne|insiste|affirme|ajoute|confie"
    r"|résume|estime|assure|rappelle|raconte|note|observe|poursuit|conclut|reconnaît|détaille"
    r"|commente|lance|martèle|prévient|avance|glisse|témoigne|juge|relève|analyse|sourit"
    r"|s['’]enthousiasme|se réjouit|se félicite|admet|reprend|complète)\s+$")

#: What a kind-only attribute implies about the answer's unit ("Quel âge ?" -> "48 ans").
IMPLIED_UNIT = {
    "age": _AGE,
    "surface": re.compile(r"m²|m2\b|mètres carrés|hectares?|\bha\b", re.IGNORECASE),
    "superficie": re.compile(r"m²|m2\b|mètres carrés|hectares?|\bha\b", re.IGNORECASE),
    "altitude": re.compile(r"\bmètres\b|\bm\b"),
    "hauteur": re.compile(r"\bmètres\b|\bm\b"),
    "duree": re.compile(r"\b(?:ans?|années?|mois|semaines?|jours?|heures?|minutes?)\b"),
    "pourcentage": re.compile(r"%|pour ?cent"),
    "taux": re.compile(r"%|pour ?cent"),
    "part": re.compile(r"%|pour ?cent|tiers|quart|moitié"),
    "longueur": re.compile(r"\b(?:mètres|m|kilomètres|km)\b"),
    "distance": re.compile(r"\b(?:mètres|m|kilomètres|km)\b"),
    "temperature": re.compile(r"\bdegrés\b|°"),
}
_IMPLIED_WORD = re.compile(r"\b(?:quel(?:le)?s?\s+(?:est\s+|etait\s+)?(?:l'|la\s+|le\s+)?"
                           r"|how\s+|combien de\s+|what\s+(?:is\s+)?(?:the\s+)?)"
                           r"(age|surface|superficie|altitude|hauteur|duree|longueur|distance"
                           r"|temperature"
                           r"|pourcentage|taux|part|proportion|temps|old|big|large|long|share"
                           r"|percentage)\b")
_IMPLIED_EN = {"old": "age", "big": "surface", "large": "surface", "long": "duree",
               "temps": "duree", "proportion": "part", "share": "part",
               "percentage": "pourcentage"}
FIGURE_KINDS = frozenset({"number", "money", "area"})  # kinds answered by a figure


@dataclass(frozen=True)
class FactSpan:
    start: int
    end: int
    text: str
    score: float = 0.0  # closeness to the words of what is asked (1: right beside them)
    former: bool = False  # a person named as a role's former holder (`former_holder`)
    body: bool = False  # a body's name when a person is asked (`names_a_body`)


def implied_unit(question: str) -> re.Pattern[str] | None:
    """The unit a kind-only attribute implies ("Quel âge a ... ?" -> "ans"), if any."""
    q = folded_question(question)
    m = _IMPLIED_WORD.search(q)
    if m is None or re.fullmatch(r"quel(?:le)?s?\s+temps", m.group(0)):
        return None  # "Quel temps fera-t-il ?" asks the weather, "combien de temps" a length
    word = _IMPLIED_EN.get(m.group(1), m.group(1))
    return IMPLIED_UNIT.get(word)


@lru_cache(maxsize=4096)
def fact_spans(kind: str | None, sentence: str, question: str) -> tuple[FactSpan, ...]:
    """Spans of `sentence` holding a fact of `kind` that `question` does not already state (a
    figure in digits or in letters, "les trois écoles", copied from it is none)."""
    asked = fold_accents(question.lower())
    out: list[FactSpan] = []
    if kind in FIGURE_KINDS:
        for m in _FIGURE.finditer(sentence):
            digits = re.sub(r"\D", "", m.group(0))
            if digits and digits in re.sub(r"[^\d ]", "", asked).split():
                continue
            spelled = fold_accents(m.group(0).lower())
            if not digits and re.search(rf"(?<![\w-]){re.escape(spelled)}(?![\w-])", asked):
                continue  # "les trois écoles" copied from the question
            end = _extend_unit(sentence, m.end(), kind)
            out.append(FactSpan(m.start(), end, sentence[m.start():end].strip()))
    elif kind in {"date"}:
        for m in _DATE_SPAN.finditer(sentence):
            years = re.findall(r"\d{4}", m.group(0))
            if years and all(y in asked for y in years) and not re.search(_MONTH, m.group(0)):
                continue
            out.append(FactSpan(m.start(), m.end(), m.group(0)))
        out = _outermost(out)
    elif kind == "frequency":
        out = [FactSpan(m.start(), m.end(), m.group(0)) for m in _FREQUENCY.finditer(sentence)]
    elif kind == "person":
        out = [FactSpan(m.start(), m.end(), m.group(0)) for m in _PERSON.finditer(sentence)
               if not _asked(m.group(0), asked)]
    elif kind in {"name", "place"}:
        pattern = _PLACE if kind == "place" else _NAME_RUN
        out = [s for s in _names(pattern, sentence) if not _asked(s.text, asked)]
        if kind == "place":
            asked_terms = set(analyze(question))  # a description the question gives is no answer
            out = _outermost(out + [FactSpan(m.start(1), m.end(1), m.group(1).rstrip())
                                    for m in _FORMER_PLACE.finditer(sentence)
                                    if not set(analyze(m.group(1))) <= asked_terms])
        if kind == "place" and not out:
            out = [s for s in _names(_NAME_RUN, sentence) if not _asked(s.text, asked)]
    return tuple(out)


def _names(pattern: re.Pattern[str], sentence: str) -> list[FactSpan]:
    """Runs of capitalised words, without a leading capitalised article ("Le", "La"...)."""
    out = []
    for m in pattern.finditer(sentence):
        start, text = m.start(), m.group(0)
        lead = re.match(rf"(?:(?:Le|La|Les|L['’]|Un|Une|Des|Du|De|En|À|A|Au|Aux|Dans|Pour|Sur|Avec"
                        rf"|Selon|Depuis|Après|Avant|Il|Elle|Ils|Elles|Ce|Cette|Ces|Son|Sa|Ses"
                        rf"|Leur|Leurs|Mais|Et|Ou|Or|Donc|Car|Ainsi)(?:{_S}+|(?<=['’])))+", text)
        before = sentence[:start].rstrip(" \u00a0«\"“(-–—•")
        if lead:
            start, text = start + lead.end(), text[lead.end():]
        elif ((not before or before[-1] in ".!?…»\"”")
              and not re.search(rf"^{_NAME_WORD}{_S}+(?:&{_S}+)?{_NAME_WORD}", text)
              and not _named_subject(text, sentence[start + len(text):])):
            # a sentence's first word has its capital anyway: alone, it is no name, and what
            # follows it is one on its own ("Originaire de Blois" -> "Blois")
            rest = re.match(rf"{_NAME_WORD}{_LINK}(?=[A-ZÀ-ÖØ-Þ])", text)
            if rest is None:
                continue
            start, text = start + rest.end(), text[rest.end():]
        words = [strip_elision(w).lower() for w in re.findall(r"[\w’'-]+", text)]
        named = text[:1].isupper() if pattern is _NAME_RUN else bool(re.search(_NAME_WORD, text))
        if named and len(text) > 1 and not all(w in STOPWORDS for w in words):
            out.append(FactSpan(start, start + len(text), text))
    return out


#: Words that open a sentence followed by a comma without being a name ("Ensuite, une
#: soixantaine ..."); adverbs in "-ment" are told by their ending.
_SENTENCE_ADVERBS = frozenset("""ensuite aujourd'hui aujourd’hui desormais enfin ainsi ici la puis
alors cependant neanmoins pourtant hier demain egalement bref outre certes surtout depuis or donc
mais car avant apres ensemble deja autrefois jadis toutefois pourquoi resultat bilan objectif
lundi mardi mercredi jeudi vendredi samedi dimanche""".split())


def _named_subject(word: str, after: str) -> bool:
    """Whether a sentence's capitalised first word, alone, is a name all the same: described
    right after it ("Houlographe, une startup fondée ...", "Calorik, spécialisée dans ...",
    "Holocène a été cofondée ..."), and no adverb ("Ensuite, une soixantaine ...")."""
    folded = fold_accents(word.lower())
    return (" " not in word and bool(re.match(rf"(?:,|{_S}*\(|{_S}+a{_S}+été\b)", after))
            and folded not in _SENTENCE_ADVERBS and folded not in STOPWORDS
            and not folded.endswith("ment") and not word.isupper())


def _extend_unit(sentence: str, end: int, kind: str) -> int:
    """The end of the figure's unit: up to three words of what it counts ("146 candidatures",
    "12 startups accompagnées" -> "12 startups", "22 jeunes entreprises"), none after a sign
    (€, %, m²)."""
    if sentence[end - 1:end] in "€%²" or kind != "number":
        tail = re.match(rf"{_S}*(?:d['’]euros|euros?)\b", sentence[end:])
        return end + tail.end() if tail else end
    pos = end
    for _ in range(3):
        m = _UNIT_WORDS.match(sentence, pos)
        if m is None:
            break
        word = _WORD.search(m.group(0))
        if word is None or word.group(0).lower() in _STOP_AFTER or word.group(0)[0].isdigit():
            break
        pos = m.end()
        # "vingt-deux jeunes entreprises": an adjective before its noun, the noun follows
        if (fold_accents(word.group(0).lower()) not in BEFORE_NOUN
                and not re.match(rf"{_S}*(?:de|d['’])", sentence[pos:])):
            break
    return pos


def _asked(span: str, asked: str) -> bool:
    """Whether every capitalised word of `span` is already in the (folded) question, itself or
    as the stem of a word there ("Marseille" in "marseillaise", "Caen" in "caennais")."""
    words = [fold_accents(w.lower()) for part in re.findall(_NAME_WORD, span)
             for w in re.split(r"[-’' ]+", part) if w]
    words = [w for w in words if w not in STOPWORDS and not w.isdigit()]
    question = re.findall(r"\w+", asked)
    return bool(words) and all(any(_same_stem(w, q) for q in question) for w in words)


def _same_stem(word: str, other: str) -> bool:
    if word == other:
        return True
    common = len(os.path.commonprefix([word, other]))
    return common >= max(4, len(word) - 3) and len(other) >= 4


def _outermost(spans: list[FactSpan]) -> list[FactSpan]:
    return [s for s in spans if not any(o is not s and o.start <= s.start and s.end <= o.end
                                        for o in spans)]


_MONEY_SIGN = re.compile(r"€|\beuros?\b", re.IGNORECASE)
_AREA_SIGN = re.compile(r"m²|\bm2\b|mètres carrés|hectares?|\bha\b|km²", re.IGNORECASE)


UNIT_MISSING = 10  # a figure without the unit asked: far behind any that has it
#: Units that measure something other than a count ("51 ans" answers no "combien de salariés").
_OTHER_UNIT = re.compile(r"\b(?:ans?|années?|mois|semaines?|jours?|heures?|minutes?|euros?"
                         r"|degrés?|mètres?|kilomètres?|km|hectares?)\b|€|%|m²", re.IGNORECASE)
#: Before "huit ans", a length of time, not an age ("pendant huit ans", "depuis dix ans").
_DURATION_BEFORE = re.compile(r"\b(?:pendant|depuis|durant|il y a|dans|pour|après|tous les"
                              r"|au bout de|en|sur)(?:\s+(?:plus de|près de|presque|moins de"
                              r"|environ|quelque))?\s*$", re.IGNORECASE)


@lru_cache(maxsize=4096)
def ages(sentence: str) -> tuple[tuple[int, int], ...]:
    """The spans ("38 ans") of the ages `sentence` states (`_AGE`), lengths of time left out
    (`_DURATION_BEFORE`: "pendant huit ans", "au bout de six ans"): the one definition of an
    age, read by the short answer (`states_age`) and by the pick's `unit` (`states_unit`)."""
    return tuple((m.start("figure"), m.end()) for m in _AGE.finditer(sentence)
                 if not _DURATION_BEFORE.search(
                     sentence[max(0, m.start("figure") - 30):m.start("figure")]))


def states_age(sentence: str, start: int, end: int) -> bool:
    """Whether the figure at `start:end` of `sentence` is an age (`ages`)."""
    return any(a < end and start < b for a, b in ages(sentence))


def states_unit(unit: re.Pattern[str], sentence: str) -> bool:
    """Whether `sentence` states a figure in the `unit` a question implies (`implied_unit`):
    an age (`ages`), a surface, a length of time..."""
    return bool(ages(sentence)) if unit is IMPLIED_UNIT["age"] else bool(unit.search(sentence))


def in_unit(unit: re.Pattern[str], sentence: str, start: int, end: int) -> bool:
    """Whether the figure at `start:end` of `sentence` is in the `unit` a question implies: an
    age (`states_age`: "Inès Barjavel, 38 ans", not "pendant huit ans"), or the unit written
    right after it ("neuf mois", not "huit entreprises")."""
    if unit is IMPLIED_UNIT["age"]:
        return states_age(sentence, start, end)
    return bool(unit.search(sentence[start:end + 12]))


def former_holder(sentence: str, start: int, question: str) -> bool:
    """Whether the person named at `start` is a role's former holder ("son prédécesseur,
    Corentin ...") and the question does not ask about one ("Qui dirigeait ... avant ... ?")."""
    return (bool(_FORMER_BEFORE.search(sentence[max(0, start - 80):start]))
            and not _FORMER_ASKED.search(folded_question(question)))


def speaker(sentence: str) -> bool:
    """Whether a person the sentence names speaks in it: named right after a quotation and a
    verb of speech ("», insiste Maud Kerléan, directrice ...")."""
    return any(_SPEAKER_BEFORE.search(sentence[max(0, m.start() - 40):m.start()])
               for m in _PERSON.finditer(sentence))


def slot(kind: str | None, sentence: str, question: str, focus: tuple[str, ...],
         attribute: str | None = None,
         unit: re.Pattern[str] | None = None) -> tuple[FactSpan, ...]:
    """The fact spans of `sentence`, each scored by closeness to the nearest word of `focus`
    (analysed terms of what is asked): 1 / (1 + words between them / 3), a comma, semicolon,
    colon or parenthesis counting as a word; 0.25 when no focus word is in the sentence; divided
    by `UNIT_MISSING` for an amount without its currency, an area without its unit, a figure
    without the `unit` the question implies (`implied_unit`: "Combien de temps ?" -> mois,
    ans...), a figure that is not an age when an age is asked (`states_age`: "pendant huit
    ans", "il faut cinq ou six ans pour"), a figure in another unit than the count asked ("51
    ans" for "combien de salariés", `_OTHER_UNIT`); /5 for a name right after a person's role
    when a name is asked, /2 for a person's name (one opening with a first name) when a name is
    asked and for a body's name when a person is asked, /3 for a role's former
    holder ("son prédécesseur, Corentin ...") unless the question asks about one ("Qui
    dirigeait ... avant ... ?"); x0.8 for a figure in letters. A figure that counts the
    `attribute` asked ("146 candidatures" for "combien de candidatures"), a place that names it
    ("rue de Longvic" for "Dans quelle rue ... ?"), comes first. Best
    first."""
    spans = fact_spans(kind, sentence, question)
    if not spans:
        return ()
    heads = {t[:3] for t in focus}  # a cheap first look: a match shares its first letters
    positions = [m.start() for m in _WORD.finditer(sentence)
                 if (terms := _terms(m.group(0))) and any(w[:3] in heads for w in terms)
                 and any(matches(t, terms) for t in focus)]
    # words, and the breaks (",", ";", "(", ":") that end a list item or a clause: a figure
    # across one belongs to another noun ("450 places, un auditorium de 150 places")
    starts = [m.start() for m in _TOKEN.finditer(sentence)]
    unit = unit if kind in FIGURE_KINDS else None
    scored = []
    for s in spans:
        if positions:
            # the words of what is asked beside the span, those inside it only when alone
            # ("places" in "320 places" tells no two figures apart)
            outside = [p for p in positions if not s.start <= p < s.end] or positions
            gap = min(_words_between(starts, s, p) for p in outside)
            score = 1.0 / (1.0 + gap / 3)
        else:
            score = 0.25
        if kind == "money" and not _MONEY_SIGN.search(s.text):
            score /= UNIT_MISSING
        elif kind == "area" and not _AREA_SIGN.search(s.text):
            score /= UNIT_MISSING
        elif unit is not None and not in_unit(unit, sentence, s.start, s.end):
            score /= UNIT_MISSING  # "Combien de temps ?": "neuf mois", not "huit entreprises"
        elif (kind == "number" and unit is None and attribute and _OTHER_UNIT.search(s.text)
              and not attribute_matches(attribute, _terms_of(s.text))):
            score /= UNIT_MISSING  # "Combien de salariés ?": not "51 ans"
        if kind in FIGURE_KINDS and not re.search(r"\d", s.text):
            score *= 0.8
        body = kind == "person" and names_a_body(s.text)
        if body:
            score /= 2  # "Feuillets de Normandie", "Région Normandie": not a person
        former = kind == "person" and former_holder(sentence, s.start, question)
        if former:
            score /= 3  # "Qui dirige ... ?": not "son prédécesseur, Corentin ..."
        if kind == "name" and _ROLE_BEFORE.search(sentence[max(0, s.start - 40):s.start]):
            score /= 5  # "sa directrice Malika ...": a person, not the body asked
        elif kind == "name" and opens_with_first_name(s.text):
            score /= 2  # "Quelle entreprise ... ?": not "Romain Lacrampe-Idiart"
        if (attribute and kind in FIGURE_KINDS | {"place"}
                and attribute_matches(attribute, _terms_of(s.text))):
            score += 1.0
        scored.append(FactSpan(s.start, s.end, s.text, round(score, 4), former, body))
    return tuple(sorted(scored, key=lambda s: (-s.score, s.start)))


#: First words of the names of bodies, not people ("Région Normandie", "Agence Lumière").
_BODY_WORDS = frozenset("""region agence societe association groupe metropole ville conseil
universite ecole institut fondation banque cluster pole ministere mairie departement communaute
chambre federation syndicat collectif laboratoire musee lycee college reseau fonds office centre
maison comite commission entreprise startup cabinet atelier studio club union prefecture""".split())


def names_a_body(name: str) -> bool:
    """Whether a capitalised run names a body rather than a person: it opens with a body's word
    ("Région Normandie"), or joins words with "de" / "du" / "des" without opening on a common
    first name ("Feuillets de Normandie", not "Anne de Bretagne")."""
    words = fold_accents(name.lower()).split()
    if not words:
        return False
    if words[0] in _BODY_WORDS:
        return True
    return (any(w in {"de", "du", "des"} or w.startswith(("d'", "d’")) for w in words[1:])
            and not opens_with_first_name(name))


def opens_with_first_name(name: str) -> bool:
    """Whether `name` opens with a common first name ("Marie-Laure Vie", "MICHEL HEINRICH"),
    from `assistant/data/first_names.txt`."""
    first = fold_accents(name.split()[0].lower()).split("-")[0] if name.split() else ""
    return first in _first_names()


@lru_cache(maxsize=1)
def _first_names() -> frozenset[str]:
    return frozenset(w for line in data_lines("first_names.txt") for w in line.split())


@lru_cache(maxsize=16384)
def _terms(word: str) -> frozenset[str]:
    return frozenset(analyze(word))


def _terms_of(text: str) -> frozenset[str]:
    return frozenset(t for w in _WORD.findall(text) for t in _terms(w))


def _words_between(starts: list[int], span: FactSpan, position: int) -> int:
    if span.start <= position < span.end:
        return 0
    if position < span.start:
        return sum(1 for x in starts if position < x < span.start)
    return sum(1 for x in starts if span.end <= x < position)
