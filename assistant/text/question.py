"""What a question asks: its weighted content words, the kind of fact wanted, its follow-ups.

- `Terms.of(query, retriever)`: the query's content terms (French analysis, minus the words that
  only phrase a question) weighted by BM25 IDF. Words written with a capital inside the question
  name an entity and weigh `ENTITY_BOOST` times more for the coverage decision; lower-case words
  absent from the whole corpus are most often paraphrases ("surface" for "m²") and weigh
  `ABSENT_DISCOUNT` times as much (twice that when the question has no capital at all, since
  its names cannot be told from other words).
- `question_kind(question)`: "person", "date", "frequency", "money", "area", "number", "place",
  "name" or None (a description: "Qu'est-ce que ... ?", or no clear kind).
- `contextualize(question, history)`: a short follow-up ("Et combien d'emplois ?", "Qui la
  dirige ?", "Et à Nancy ?") gets the previous question's key words; no LLM involved.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from types import MappingProxyType
from typing import TYPE_CHECKING

from .analysis import STOPWORDS, analyze, fold_accents, strip_elision

if TYPE_CHECKING:
    from ..search.retriever import HybridRetriever

ENTITY_BOOST = 3.0
ABSENT_DISCOUNT = 0.35

# Words that phrase a question without naming its topic (compared after analysis).
_QUESTION_PHRASING = """nom appel appelle exist existe savoir sait dire dit connaitre connaît
expliquer explique parle parler pouvez peux peut pourriez voudrais aimerais chose quelqu
quelque agit agissait concerne concernant elle il trouve situe située compte comptent
selon fait font faire sert servent""".split()

_TOKEN = re.compile(r"[\w’'-]+")


@lru_cache(maxsize=1)
def _phrasing_terms() -> frozenset[str]:
    return frozenset(t for w in _QUESTION_PHRASING for t in analyze(w))


def _tokens(text: str) -> list[str]:
    """Words in their written form, elision removed ("l'Australie" -> "Australie")."""
    out = [strip_elision(m.group(0)).strip("-’'") for m in _TOKEN.finditer(text)]
    return [t for t in out if t]


_COMPOUND = re.compile(r"\b(co|vice|ex|e|re|pré|pre|post|anti|auto|multi|inter|micro|sous|néo"
                       r"|neo|bio|éco|eco|euro|cyber|télé|tele)-(\w+)", re.IGNORECASE)


def content_terms(text: str) -> list[str]:
    """Distinct analyzed terms of a question, without the words that only phrase it (nor the
    particle of a compound: "co-fondateur" gives "fondateur", see `compound_forms`)."""
    phrasing = _phrasing_terms() | {t for m in _COMPOUND.finditer(text) for t in analyze(m[1])}
    return [t for t in dict.fromkeys(analyze(text)) if t not in phrasing]


def compound_forms(text: str) -> dict[str, str]:
    """Term of a compound's head -> term of the joined spelling ("fondateur" -> "cofond")."""
    out = {}
    for m in _COMPOUND.finditer(text):
        head, joined = analyze(m[2]), analyze(m[1] + m[2])
        if head and joined and head[0] != joined[0]:
            out[head[0]] = joined[0]
    return out


def entity_terms(text: str) -> set[str]:
    """Analyzed terms of the words written with a capital (not the first word of the text)."""
    if text.isupper():
        return set()
    found: set[str] = set()
    for i, token in enumerate(_tokens(text)):
        if not token[0].isupper() or (i == 0 and not (token.isupper() and len(token) > 1)):
            continue
        found.update(analyze(token))
    return found


def name_terms(text: str) -> list[str]:
    """The names `text` asks about: its `entity_terms` of 3 letters or more that are not numbers
    (what an article must mention to be about the same place or body)."""
    return sorted(t for t in entity_terms(text) if len(t) >= 3 and not t.isdigit())


@dataclass(frozen=True)
class Terms:
    """The query's content terms and their weights."""

    weights: dict[str, float]
    alternates: dict[str, str] = field(default_factory=dict)  # see `compound_forms`

    @classmethod
    def of(cls, query: str, retriever: HybridRetriever, *, entity_boost: float = ENTITY_BOOST,
           absent_discount: float = ABSENT_DISCOUNT) -> Terms:
        """Weights for the coverage decision; (1.0, 1.0) gives plain IDF weights."""
        entities = entity_terms(query)
        # A question written all in lower case names nothing we can see: discount less.
        discount = absent_discount if entities else min(1.0, 2 * absent_discount)
        unseen = retriever.idf("\x00")  # the IDF of a term absent from the corpus
        weights: dict[str, float] = {}
        for term in content_terms(query):
            idf = retriever.idf(term)
            if term in entities:
                idf *= entity_boost
            elif idf >= unseen - 1e-9 and not term.isdigit():
                idf *= discount
            weights[term] = idf
        return cls(weights, compound_forms(query))

    def covered(self, found: AbstractSet[str]) -> float:
        """IDF-weighted share of the terms present in `found` (analyzed terms of some text)."""
        total = sum(self.weights.values())
        if total <= 0:
            return 0.0
        found = found if isinstance(found, frozenset) else frozenset(found)
        return sum(w for t, w in self.weights.items()
                   if matches(t, found) or (t in self.alternates and self.alternates[t] in found)
                   ) / total


def matches(term: str, found: AbstractSet[str]) -> bool:
    """Exact stem, or a derivation: one stem is a prefix (5+ letters) of the other, a long stem
    (7+ letters) ends the other (a compound: "fondateur" in "cofondateur"), or the pair is in
    the table of derivations the stemmer keeps apart ("dirige" / "directrice").

    Logarithmic in `found` (sorted words and sorted reversed words, cached per set): the answerer
    asks this for every question term against every candidate sentence."""
    if term in found:
        return True
    if not term.isalpha():
        return False
    forward, backward = _sorted_affixes(found if isinstance(found, frozenset)
                                        else frozenset(found))
    n = len(term)
    return ((n >= 5 and _has_prefix(forward, term))  # a longer word starts with the term
            or any(term[:i] in found for i in range(5, n))  # the term starts with a word
            or (n >= 7 and _has_prefix(backward, term[::-1]))  # a longer word ends with it
            or any(term[i:] in found for i in range(1, n - 6))  # it ends with a long word
            or any(_has_prefix(forward, p) for p in _derivations().get(term, ())))


@lru_cache(maxsize=1)
def _derivations() -> Mapping[str, tuple[str, ...]]:
    """Question stem -> prefixes of the text stems derived from the same word
    (`assistant/data/derivations.txt`: "dirige" and "directrice" stem apart)."""
    text = resources.files("assistant").joinpath("data", "derivations.txt").read_text("utf-8")
    table: dict[str, tuple[str, ...]] = {}
    for line in text.splitlines():
        stem, sep, prefixes = line.partition(":")
        if sep and not line.startswith("#"):
            table[stem.strip()] = tuple(prefixes.split())
    return MappingProxyType(table)


@lru_cache(maxsize=4096)
def _sorted_affixes(found: frozenset[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return tuple(sorted(found)), tuple(sorted(f[::-1] for f in found))


def _has_prefix(words: tuple[str, ...], prefix: str) -> bool:
    """Whether a word of the sorted `words` starts with `prefix`."""
    i = bisect_left(words, prefix)
    return i < len(words) and words[i].startswith(prefix)


# English function words: a question made of them is English, and its words cannot match the
# French articles (the answer stays in French; see `decision.py`).
_ENGLISH = frozenset("""the of in at to for from with by about what which who whom whose
how when where why does do did is are was were will would can could has have had many much this
that these those its their there according""".split())
_LATIN_WORD = re.compile(r"[A-Za-zÀ-ÿ'’]+")


def english_share(question: str) -> float:
    """Share of the question's words that are English function words (0 for French)."""
    found = [w.lower() for w in _LATIN_WORD.findall(question)]
    return sum(w in _ENGLISH for w in found) / len(found) if found else 0.0


# -- the kind of fact asked --------------------------------------------------------------------
_PERSON_Q = re.compile(r"^(?:et\s+)?(?:a|par|avec|pour|de|chez)?\s*qui\b|\bc'est qui\b"
                       r"|\bqui (?:dirige|preside|pilote|a fonde|a cree|est|etait)\b")
_DATE_Q = re.compile(r"\b(?:quand|quelle date|quel jour|quel mois|quelle annee)\b"
                     r"|\bquel(?:le)?s?\s+(?:(?:est|etait|sera|sont|etaient)\s+(?:la|le|les|l')\s*)?"
                     r"(?:dates?|jours?|mois|annees?)\b")
# "À quelle fréquence ... ?", "Tous les combien ... ?": the answer is a phrase ("tous les deux
# ans", "chaque mois"), neither a name nor a plain figure.
_FREQUENCY_Q = re.compile(r"\bquel(?:le)?s?\s+(?:est\s+|etait\s+|sera\s+)?(?:la\s+)?"
                          r"(?:frequence|periodicite)\b|\btous les combien\b"
                          r"|\ba quel rythme\b|\bquel est le rythme\b")
_NUMBER_Q = re.compile(
    r"\bcombien\b|\bquel(?:le)?s?\s+(?:est\s+|etait\s+|sont\s+|sera\s+)?(?:le\s+|la\s+|l')?"
    r"(montant|nombre|somme|budget|cout|surface|superficie|taille|pourcentage|part|chiffre"
    r"|effectif|capacite|prix|valeur|investissement|financement|enveloppe|fonds|proportion"
    r"|taux|duree|age)\b"
)
#: Words that name the kind of fact asked ("la surface", "le montant"): the kind check of the
#: candidate sentences (`sentences.fact_score`) answers them, not their letters.
_KIND_WORDS = """surface superficie taille montant nombre somme budget cout prix valeur chiffre
date annee jour mois nom combien quand ou qui""".split()


@lru_cache(maxsize=1)
def kind_terms() -> frozenset[str]:
    return frozenset(t for w in _KIND_WORDS for t in analyze(w))


_MONEY_WORDS = {"montant", "somme", "budget", "cout", "prix", "investissement", "financement",
                "enveloppe", "fonds"}
_AREA_WORDS = {"surface", "superficie", "taille"}
#: A count, a share or a length of time, whatever it counts ("le nombre de startups financées",
#: "la part du budget").
_COUNT_WORDS = {"nombre", "effectif", "capacite", "pourcentage", "part", "proportion", "taux",
                "duree", "age"}
_AREA_UNIT = r"\bsurface\b|\bm2\b|\bm²|\bmetres? carres?\b|\bhectares?\b|\bkm2\b"
_MONEY_UNIT = r"\beuros?\b|\bdollars?\b"
_MONEY_FR = (r"\bcout|\beuros?\b|\bfinanc|\binvest|\bloyer|\btarif|\bprix\b|\bsubvention"
             r"|\bcotisation|\bsalaire|\bdotation")
# "Combien de startups ont été financées ?" counts startups: what "combien de" counts (its noun
# and the one or two words after) says whether the figure is money or an area.
_COMBIEN_DE = re.compile(r"\bcombien\s+(?:de|d')\s*((?:[\w²'-]+\s*){1,3})")
# "Quel chiffre d'affaires ... ?"
_TURNOVER = re.compile(r"\bchiffres? d'affaires\b")
# "Quels clusters ... ?", "Quelle école ... ?", "Sur le terrain de quel industriel ... ?",
# "Quel est le nom ... ?" (not "Quel est le rôle ?", not "À quelle fréquence ?")
_NAME_Q = re.compile(r"(?<!\btel )(?<!\btelle )(?<!\btels )(?<!\btelles )(?<!\bimporte )"
                     r"\bquel(?:le)?s?\s+"
                     r"(?!est\b|sont\b|etait\b|etaient\b|sera\b|seront\b|serait\b"
                     r"|(?:role|objectif|but|mission|ambition|vocation|interet|enjeu|avantage"
                     r"|raison|particularite|principe|strategie|impact|statut|activite|type"
                     r"|forme|idee|sens|lien|difference|probleme|defi|frequence|periodicite"
                     r"|rythme|duree|delai|part|proportion|taux|pourcentage|moyenne|distance"
                     r"|heure|horaire|maniere|facon|mesure|point|niveau|age|hauteur|longueur"
                     r"|poids|vitesse|prix|tarif|cout)s?\b)"
                     r"|\bquel(?:le)?s? (?:est|sont|etait) (?:le|les) noms?\b"
                     r"|\bcomment (?:s'appell|se nomm|s'intitul)")
_PLACE_Q = re.compile(r"^(?:et\s+)?(?:d')?ou\b|\bou (?:se trouve|est|sont|a lieu|se situe|sera)"
                      r"|\b(?:dans|en|a) quel(?:le)? (?:ville|region|departement|pays|quartier"
                      r"|lieu|commune)")


# The same kinds asked in English (users of the chat sometimes write in English).
_PERSON_EN = re.compile(r"^(?:and\s+)?(?:to\s+|by\s+|with\s+)?(?:who|whom)\b|\bwho "
                        r"(?:runs|leads|heads|directs|manages|chairs|founded|created|is|was)\b")
_DATE_EN = re.compile(r"\bwhen\b|\b(?:what|which) (?:year|date|day|month)\b"
                      r"|\b(?:what|which) (?:is|was|were) the (?:year|date|day|month)\b")
_FREQUENCY_EN = re.compile(r"\bhow (?:often|frequently)\b|\bat what (?:frequency|interval)"
                           r"|\b(?:what|which) (?:is|was) the (?:frequency|periodicity)\b")
# "what is the (yearly) budget", "what share of": the word naming the figure asked.
_NUMBER_EN = re.compile(r"\b(?:what|which) (?:is |was |were |are )?(?:the |its |their )?"
                        r"(?:[a-z-]+ ){0,2}?(amount|number|budget|cost|size|area|price|capacity"
                        r"|total|surface|share|percentage|proportion|rate|duration|turnover"
                        r"|revenue)\b")
_HOW_MUCH_EN = re.compile(r"\bhow (many|much|big|large|long)\b((?:\s+[\w²'-]+){0,3})")
_AREA_EN = re.compile(r"\bsquare (?:met|feet|foot|kilomet)|\bsurface\b|\barea\b|\bsize\b"
                      r"|\bfloor space\b|\bhectares?\b|\bm2\b|\bm²")
_MONEY_EN = re.compile(r"\bmoney\b|\bfunding\b|\bcost|\bbudget|\beuros?\b|\bdollars?\b|\bfund"
                       r"|\binvest|\bprice|\bgrant|\bloan|\braise|\bspen[dt]|\bpaid\b|\bpay"
                       r"|\bturnover\b|\brevenue\b|\bsubsid|\bcontribut|\bticket|\brent\b|\bfee")
#: After "how much", a verb or its auxiliary: the sum itself is asked ("How much did X get ?").
_VERB_EN = re.compile(r"^\s+(?:is|was|are|were|did|does|do|will|would|has|have|had|can|could"
                      r"|should|must)\b")
_PLACE_EN = re.compile(r"^(?:and\s+)?where\b|\bwhere (?:is|are|was|were|does|do|did|will)\b"
                       r"|\bin (?:which|what) (?:city|town|region|department|country|district"
                       r"|place)")
_NAME_EN = re.compile(r"^(?:and\s+)?(?:(?:in|at|from|by|with|for|of)\s+)?(?:which|what)\s+"
                      r"(?!is\b|are\b|was\b|were\b|does\b|do\b|did\b|will\b|can\b|kind\b"
                      r"|role\b|purpose\b|goal\b|aim\b|mission\b|idea\b|difference\b|type\b"
                      r"|frequency\b|periodicity\b|duration\b|time\b|proportion\b|share\b"
                      r"|percentage\b|rate\b)"
                      r"|\bname (?:of )?the\b|\bnames? of\b")


def question_kind(question: str) -> str | None:
    """The kind of fact the question wants, from its wording, in French or English
    (None: a description, or no clear kind)."""
    q = fold_accents(question.lower().replace("’", "'")).strip()
    if _PERSON_Q.search(q) or _PERSON_EN.search(q):
        return "person"
    if _DATE_Q.search(q) or _DATE_EN.search(q):
        return "date"
    if _FREQUENCY_Q.search(q) or _FREQUENCY_EN.search(q):
        return "frequency"
    figure = _figure_kind(q)
    if figure is not None:
        return figure
    if _PLACE_Q.search(q) or _PLACE_EN.search(q):
        return "place"
    if _NAME_Q.search(q) or _NAME_EN.search(q):
        return "name"
    return None


def _figure_kind(q: str) -> str | None:
    """"number", "money" or "area" when the (folded) question asks for a figure, else None."""
    m = _NUMBER_Q.search(q)
    if m is not None:
        word = m.group(1) or ""
        counted = _COMBIEN_DE.search(q) if not word else None
        if counted is not None:  # "combien d'entreprises", "combien de m2", "combien d'euros"
            noun = counted.group(1)
            return ("area" if re.search(_AREA_UNIT, noun)
                    else "money" if re.search(_MONEY_UNIT, noun) else "number")
        if word in _AREA_WORDS or re.search(_AREA_UNIT, q):
            return "area"
        if word in _COUNT_WORDS:
            return "number"
        if word in _MONEY_WORDS or _TURNOVER.search(q) or re.search(_MONEY_FR, q):
            return "money"
        return "number"
    m = _HOW_MUCH_EN.search(q)
    if m is not None:
        how, after = m.group(1), m.group(2)
        if how in {"big", "large"} or _AREA_EN.search(after):
            return "area"
        if how == "long":
            return "number"  # a length of time
        if how == "many":  # "how many startups receive funding" counts startups
            return "money" if re.search(_MONEY_UNIT, after) else "number"
        if _MONEY_EN.search(after) or _VERB_EN.match(after):
            return "money"
        return "number"
    m = _NUMBER_EN.search(q)
    if m is not None:
        word = m.group(1)
        if word in {"size", "area", "surface"} or _AREA_EN.search(q):
            return "area"
        if word in {"number", "capacity", "share", "percentage", "proportion", "rate",
                    "duration"}:
            return "number"
        if word in {"budget", "cost", "price", "turnover", "revenue"} or _MONEY_EN.search(q):
            return "money"
        return "number"
    return None


# -- the attribute asked ----------------------------------------------------------------------
# "Combien d'habitants ... ?", "Quel est le montant de la subvention ... ?", "Qui préside ... ?":
# the noun (or verb) naming *what* is asked about the topic. An article can name the topic and
# hold a figure without holding this one ("200 entreprises" answers no "combien d'habitants"),
# so the decision looks for the attribute next to a fact of the asked kind (`decision.py`).
_ATTR_WORD = r"([a-z][a-z-]+)"
_ATTR_DET = r"(?:(?:le|la|les|l'|un|une|des|du|de la|de l'|d'|de|au|aux)\s*)?"
_ATTRIBUTE = [re.compile(p) for p in (
    r"\bcombien\s+(?:de|d')\s*" + _ATTR_WORD,  # combien d'habitants
    r"\bquel(?:le)?s?\s+(?:est|sont|etait|etaient|sera|seront)\s+" + _ATTR_DET + _ATTR_WORD,
    r"\bquel(?:le)?s?\s+" + _ATTR_WORD,  # quel tarif
    r"\bqui\s+(?:est|etait|sera)\s+" + _ATTR_DET + _ATTR_WORD,  # qui est le trésorier
    r"\bqui\s+(?:a\s+(?:ete\s+)?)?" + _ATTR_WORD,  # qui dirige, qui a fondé, qui a été élu
    r"\bc'est combien\s+" + _ATTR_DET + _ATTR_WORD,  # c'est combien l'entrée
    r"\bcombien\s+(?:coute|coutent|vaut|valent|rapporte)\s+" + _ATTR_DET + _ATTR_WORD,
)]
#: Nouns that only name the kind of fact: the attribute is their complement ("le montant de la
#: subvention", "le chiffre d'affaires", "le prix du ticket").
_MEASURE_WORDS = frozenset("""montant nombre somme chiffre valeur prix cout total quantite niveau
taux part pourcentage proportion duree metres hectares""".split())
#: The attribute *is* the kind of fact (the kind check answers it): no noun to look for.
_KIND_ONLY = frozenset("""surface superficie taille date dates annee annees nom noms jour jours
mois capacite effectif temps fois age""".split())
#: Auxiliaries and adverbs between "qui" and its verb ("qui va diriger", "qui a finalement été
#: élu").
_AUXILIARY = frozenset("va vont doit doivent peut peuvent finalement deja aussi alors".split())
_NOT_ATTRIBUTE = frozenset("est sont a ont etait de la le les".split())
#: Adjectives written before their noun ("combien de jeunes entreprises"): the noun follows.
_BEFORE_NOUN = frozenset("""jeune jeunes petit petits petite petites grand grands grande grandes
nouveau nouveaux nouvel nouvelle nouvelles gros grosse premier premiers premiere premieres
ancien anciens ancienne anciennes autre autres seul seuls seule seules vrai vrais vraie vraies
principal principaux principale principales""".split())
_NEXT_WORD = re.compile(r"\s+" + _ATTR_WORD)
_COMPLEMENT = re.compile(r"\s+(?:carres?\s+)?(?:de|d'|du|des)\s*(?:la\s+|l'|le\s+|les\s+)?"
                         + _ATTR_WORD)  # "le montant de la subvention", "mètres carrés de"
_AFTER_AUXILIARY = re.compile(r"\s+(?:ete\s+)?" + _ATTR_WORD)
#: Kinds of fact whose question names an attribute of its topic (a "Quel X ... ?" question names
#: a class of things instead, rarely written as such in the answer).
ATTRIBUTE_KINDS = frozenset({"number", "money", "area", "person", "date"})


def attribute_term(question: str) -> str | None:
    """The analyzed term of what a French question asks about its topic ("Combien d'habitants
    ... ?" -> "habit", "Quel est le montant de la subvention ... ?" -> "subvent", "Qui préside
    ... ?" -> "presid"), or None when its wording names none (or it only names the kind of fact:
    "Quelle est la surface ... ?")."""
    q = fold_accents(question.lower().replace("’", "'"))
    for pattern in _ATTRIBUTE:
        m = pattern.search(q)
        if m is None or m.group(1) in _NOT_ATTRIBUTE:
            continue
        word, end = m.group(1), m.end()
        if word in _KIND_ONLY:
            return None
        if word in _AUXILIARY:
            after = _AFTER_AUXILIARY.match(q, end)
            if after is None:
                return None
            word, end = after.group(1), after.end()
        while word in _BEFORE_NOUN and (after := _NEXT_WORD.match(q, end)) is not None:
            word, end = after.group(1), after.end()
        if word in _MEASURE_WORDS:
            complement = _COMPLEMENT.match(q, end)
            if complement is None or complement.group(1) in STOPWORDS:
                return None
            word = complement.group(1)
        terms = analyze(word)
        return terms[0] if terms else None
    return None


# -- follow-up questions -----------------------------------------------------------------------
_FOLLOW_UP_START = re.compile(
    r"^\s*(?:et|mais|alors|aussi|puis|ensuite|idem|pareil|même question)\b", re.IGNORECASE
)
_ANAPHORA = re.compile(
    r"(?:\b(?:la|le|les|lui|leur|y|en|il|elle|ils|elles|celui-ci|celle-ci|ceux-ci|celles-ci"
    r"|là-bas|ce dernier|cette dernière|ce lieu|cette structure|ce projet|ce cluster)\b"
    r"|\bl['’])", re.IGNORECASE,
)


def contextualize(question: str, history: list[dict[str, str]] | None) -> str:
    """The retrieval query: the question, plus the previous question's key words when it is a
    short follow-up. A self-contained question passes through unchanged."""
    topic: str | None = None
    for message in history or []:
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str) and content.strip():
            topic = _resolve(" ".join(content.split()), topic)
    return question if topic is None else _resolve(question, topic)


def is_follow_up(question: str) -> bool:
    content = content_terms(question)
    own_names = entity_terms(question)
    if _FOLLOW_UP_START.match(question):
        return len(content) <= 4
    if not own_names and len(content) <= 1:
        return True
    return bool(_ANAPHORA.search(question)) and not own_names and len(content) <= 2


def _resolve(question: str, previous: str | None) -> str:
    """`question`, completed from `previous` (itself already resolved) when it is a follow-up."""
    if previous is None or not is_follow_up(question):
        return question
    own_names = entity_terms(question)
    own_terms = set(analyze(question))
    previous_names = entity_terms(previous)
    phrasing = _phrasing_terms()
    carried: list[str] = []
    content_words: list[str] = []
    after_name = False
    for token in _tokens(previous):
        terms = [t for t in analyze(token) if t not in phrasing]
        if not terms or set(terms) <= own_terms:
            after_name = False
            continue
        content_words.append(token)
        # A lower-case word right after a name belongs to it ("Serre numérique").
        is_name = bool(set(terms) & previous_names) or (after_name and token.islower())
        after_name = bool(set(terms) & previous_names)
        # "Et à Nancy ?" names its own place: keep what was asked, drop the old place.
        # "Qui la dirige ?" names nothing: keep the old names (the topic).
        if is_name != bool(own_names):
            carried.append(token)
    if not carried and not own_names:
        carried = content_words  # the previous question named nothing: carry its content
    carried = list(dict.fromkeys(carried))
    return f"{question} {' '.join(carried)}" if carried else question
