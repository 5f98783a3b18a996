"""The kind of fact a question asks, and the attribute it asks about its topic, from its wording
(French grammar patterns, and English ones for English questions).

- `question_kind(question)`: "person", "date", "frequency", "money", "area", "number", "place",
  "name" or None (a description: "Qu'est-ce que ... ?", or no clear kind). It drives the bonus a
  sentence holding that kind of fact gets (`sentences.fact_score`) in search and answers.
- `attribute_term(question)`: what a French question asks about its topic ("Combien
  d'habitants ... ?" -> "habit"), which the in/out-of-corpus decision looks for.
"""

from __future__ import annotations

import re
from functools import lru_cache

from .analysis import STOPWORDS, analyze, fold_accents

# "l effectif", "d amorcage": an elision typed without its apostrophe
_BARE_ELISION = re.compile(r"\b(qu|[ldjmnstc]) (?=[a-z])")


def folded_question(question: str) -> str:
    """The question as the patterns below read it: lower case, no accents, straight
    apostrophes, elisions typed without theirs restored ("l effectif" -> "l'effectif")."""
    q = fold_accents(question.lower().replace("’", "'")).strip()
    return _BARE_ELISION.sub(r"\1'", q)


# -- the kind of fact asked --------------------------------------------------------------------
_PERSON_Q = re.compile(r"^(?:et\s+)?(?:a|par|avec|pour|de|chez)?\s*qui\b|\bc'est qui\b"
                       r"|\bqui (?:dirige|preside|pilote|a fonde|a cree|est|etait)\b")
# "Quel élu ... ?", "Quelle ancienne directrice artistique ... ?": a person is asked.
_PERSON_NOUN_Q = re.compile(
    r"\bquel(?:le)?s?\s+(?:(?:ancien|ancienne|nouveau|nouvelle|jeune|actuel|actuelle|futur"
    r"|future|premier|premiere)\s+)?(?:elue?|responsable|dirigeante?|directeur|directrice"
    r"|presidente?|fondat(?:eur|rice)|co-?fondat(?:eur|rice)|maire|ministre|architecte"
    r"|entrepreneur|entrepreneuse|cheffe?|patronne?|personne|personnalite|ingenieure?"
    r"|chercheur|chercheuse|designer|marin|adjointe?|deputee?|senat(?:eur|rice)|journaliste"
    r"|artiste|createur|creatrice|gerante?|homme|femme)\b")
_DATE_Q = re.compile(r"\b(?:quand|quelle date|quel jour|quel mois|quelle annee)\b"
                     r"|\bquel(?:le)?s?\s+(?:(?:est|etait|sera|sont|etaient)\s+(?:la|le|les|l')\s*)?"
                     r"(?:dates?|jours?|mois|annees?)\b")
# "À quelle fréquence ... ?", "Tous les combien ... ?": the answer is a phrase ("tous les deux
# ans", "chaque mois"), neither a name nor a plain figure.
_FREQUENCY_Q = re.compile(r"\bquel(?:le)?s?\s+(?:est\s+|etait\s+|sera\s+)?(?:la\s+)?"
                          r"(?:frequence|periodicite)\b|\btous les combien\b"
                          r"|\ba quel rythme\b|\bquel est le rythme\b")
_NUMBER_Q = re.compile(
    r"\bcombien\b|\bquel(?:le)?s?\s+(?:est\s+|etait\s+|sont\s+|sera\s+|a ete\s+)?"
    r"(?:le\s+|la\s+|l')?"
    r"(montant|nombre|somme|budget|cout|surface|superficie|taille|pourcentage|part|chiffre"
    r"|effectif|capacite|prix|valeur|investissement|financement|enveloppe|fonds|proportion"
    r"|taux|duree|age|subvention|dotation|levee|loyer|salaire|cotisation|tarif|aide financiere"
    r"|apport|longueur|distance|hauteur|altitude|temperature)\b"
)
#: Words that name the kind of fact asked ("la surface", "le montant"): the kind check of the
#: candidate sentences (`sentences.fact_score`) answers them, not their letters.
_KIND_WORDS = """surface superficie taille montant nombre somme budget cout prix valeur chiffre
date annee jour mois nom combien quand ou qui""".split()


@lru_cache(maxsize=1)
def kind_terms() -> frozenset[str]:
    return frozenset(t for w in _KIND_WORDS for t in analyze(w))


_MONEY_WORDS = {"montant", "somme", "budget", "cout", "prix", "investissement", "financement",
                "enveloppe", "fonds", "subvention", "dotation", "levee", "loyer", "salaire",
                "cotisation", "tarif", "aide financiere", "apport"}
_AREA_WORDS = {"surface", "superficie", "taille"}
#: A count, a share or a length of time, whatever it counts ("le nombre de startups financées",
#: "la part du budget").
_COUNT_WORDS = {"nombre", "effectif", "capacite", "pourcentage", "part", "proportion", "taux",
                "duree", "age"}
_AREA_UNIT = r"\bsurface\b|\bm2\b|\bm²|\bmetres? carres?\b|\bhectares?\b|\bkm2\b"
_MONEY_UNIT = r"\beuros?\b|\bdollars?\b|\bargent\b"  # "combien d'argent"
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
                      r"|\b(?:dans|en|a|sur) quel(?:le)? (?:ville|region|departement|pays|quartier"
                      r"|lieu|commune|rue|avenue|boulevard|place|batiment|immeuble|site|campus"
                      r"|technopole|parc)")


# The same kinds asked in English (users of the chat sometimes write in English).
_PERSON_EN = re.compile(r"^(?:and\s+)?(?:to\s+|by\s+|with\s+)?(?:who|whom)\b|\bwho "
                        r"(?:runs|leads|heads|directs|manages|chairs|founded|created|is|was)\b"
                        r"|\b(?:which|what) (?:former |new |current )?(?:director|president"
                        r"|founder|co-founder|mayor|entrepreneur|person|manager|head|chair"
                        r"|architect|engineer|researcher|designer)\b")
_DATE_EN = re.compile(r"\bwhen\b|\b(?:what|which) (?:year|date|day|month)\b"
                      r"|\b(?:what|which) (?:is|was|were) the (?:year|date|day|month)\b")
_FREQUENCY_EN = re.compile(r"\bhow (?:often|frequently)\b|\bat what (?:frequency|interval)"
                           r"|\b(?:what|which) (?:is|was) the (?:frequency|periodicity)\b")
# "what is the (yearly) budget", "what share of": the word naming the figure asked.
_NUMBER_EN = re.compile(r"\b(?:what|which) (?:is |was |were |are )?(?:the |its |their )?"
                        r"(?:[a-z-]+(?:'s'?|\s+)\s*){0,2}?"  # "autan numerique's budget"
                        r"(amount|number|budget|cost|size|area|price|capacity"
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
    q = folded_question(question)
    if _PERSON_Q.search(q) or _PERSON_NOUN_Q.search(q) or _PERSON_EN.search(q):
        return "person"
    if _DATE_Q.search(q) or (_DATE_EN.search(q) and not _HOW_MUCH_EN.match(q)):
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
    r"\bcombien\s+(?:(?:a|ont|va|vont|avait|aurait|devrait)\s+)?(?:coute|coutent|coutera"
    r"|couteront|couter|vaut|valent|rapporte)\s+" + _ATTR_DET + _ATTR_WORD,  # combien a coute le
)]
#: Nouns that only name the kind of fact: the attribute is their complement ("le montant de la
#: subvention", "le chiffre d'affaires", "le prix du ticket").
_MEASURE_WORDS = frozenset("""montant nombre somme chiffre valeur prix cout total quantite niveau
taux part pourcentage proportion duree metres hectares""".split())
#: The attribute *is* the kind of fact (the kind check answers it): no noun to look for.
_KIND_ONLY = frozenset("""surface superficie taille date dates annee annees nom noms jour jours
mois capacite effectif temps fois age longueur distance hauteur altitude temperature""".split())
#: Auxiliaries and adverbs between "qui" and its verb ("qui va diriger", "qui a finalement été
#: élu").
_AUXILIARY = frozenset("va vont doit doivent peut peuvent finalement deja aussi alors".split())
_NOT_ATTRIBUTE = frozenset("est sont a ont etait de la le les".split())
#: Adjectives written before their noun ("combien de jeunes entreprises"): the noun follows.
BEFORE_NOUN = frozenset("""jeune jeunes petit petits petite petites grand grands grande grandes
nouveau nouveaux nouvel nouvelle nouvelles gros grosse premier premiers premiere premieres
ancien anciens ancienne anciennes autre autres seul seuls seule seules vrai vrais vraie vraies
principal principaux principale principales""".split())
#: Numbers written in letters (folded), from "deux" to "mille": "les cinq entreprises" names
#: the entreprises; `sentences.near_figures` and `facts` read the same words as figures.
CARDINALS = ("deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf", "dix", "onze",
             "douze", "treize", "quatorze", "quinze", "seize", "vingt", "vingts", "trente",
             "quarante", "cinquante", "soixante", "septante", "octante", "huitante", "nonante",
             "cent", "cents", "mille")
#: Fractions written in letters ("un tiers du budget"): figures too, for `sentences.near_figures`.
FRACTIONS = frozenset({"tiers", "quart", "quarts", "moitié"})
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
    ... ?" -> "presid"; a date question, the event it asks the date of: "Quand a-t-il été
    inauguré ?" -> "inaugur"), or None when its wording names none (or it only names the kind
    of fact: "Quelle est la surface ... ?")."""
    q = folded_question(question)
    if (when := _WHEN.search(q)) is not None:
        return _event(q[when.end():])
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
        while ((word in BEFORE_NOUN or word in CARDINALS)
               and (after := _NEXT_WORD.match(q, end)) is not None):
            word, end = after.group(1), after.end()
        if word in _MEASURE_WORDS:
            complement = _COMPLEMENT.match(q, end)
            if complement is None or complement.group(1) in STOPWORDS:
                return None
            word = complement.group(1)
        terms = analyze(word)
        return terms[0] if terms else None
    return None


def _event(q: str) -> str | None:
    """The event a date question asks the date of, as its verb's analysed term ("En quelle
    année X a-t-elle été créée ?" -> "cre", "Quand a ouvert ... ?" -> "ouvert"), or None."""
    m = _EVENT.search(q)
    if m is None or m.group(1) == "lieu":  # "quand a lieu ... ?": the event is the subject
        return None
    # folded, a feminine participle stems apart ("fondee" -> "fonde", "fondée" -> "fond")
    word = re.sub(r"e(e)s?$", r"\1", m.group(1))
    terms = analyze(word)
    return terms[0] if terms else None


_WHEN = re.compile(r"^(?:et\s+)?(?:quand\b|en quelle annee\b|a quelle date\b|depuis quand\b"
                   r"|en quel mois\b|depuis quelle annee\b)")
_EVENT = re.compile(r"\b(?:a|ont|avait|avaient|aura|auront|est|sont|etait|sera|seront)"
                    r"(?:-t-(?:il|elle|ils|elles|on)|-(?:il|elle|ils|elles))?"
                    r"(?:\s+(?:ete|deja|desormais|finalement|officiellement|bien|vraiment))*"
                    r"\s+([a-z]{3,}(?:e|es|ee|ees|i|is|ie|ies|t|ts|te|tes|u|us|ue|ues))\b")


# -- lists ---------------------------------------------------------------------------------------
# "Citez les villes...", "Quels sont les partenaires...", "Quelles entreprises...", "Which
# companies...", "List the...": the answer is several items.
_LIST_VERB = r"(?:citez|nommez|[eé]num[eé]rez|listez)"  # a request for several items
_ASK_VERB = r"(?:donnez|indiquez|pr[eé]cisez)"  # a request for one or several
_LIST_Q = re.compile(
    rf"^(?:et\s+)?(?:{_LIST_VERB}|{_ASK_VERB}(?:-moi)? les)\b"
    r"|\bquel(?:le)?s\s+(?:sont|etaient|seront)\s+(?:les|ses|leurs|des)\b"
    r"|\bquel(?:le)?s\s+(?!sont\b|etaient\b|seront\b)[a-z-]+s\b"
    r"|^(?:list|name)\b|\b(?:what|which) (?:are|were) the\b"
    r"|^(?:what|which) (?!does\b|was\b|has\b|is\b)[a-z-]{2,}s (?!is\b|was\b)"
)


def is_list_question(question: str) -> bool:
    """Whether the question asks for several items (a list)."""
    return _LIST_Q.search(folded_question(question)) is not None


# The imperative that opens a request ("Citez les villes...", "Donnez-moi le nom...", "Name the
# startups...", "Tell me who..."): it says how to answer, not what about ("citez" would find
# "cité", "nommez" "nommé", and "name" is glossed "nom").
_REQUEST = re.compile(rf"^\s*(?:(?:et|and)\s+)?(?:{_LIST_VERB}|{_ASK_VERB}"
                      r"|name|list|enumerate|give|tell|show)(?:[- ]moi| me| us)?\b\s*",
                      re.IGNORECASE)


def without_request(question: str) -> str:
    """The question without the imperative that opens it, if any ("Citez les villes
    partenaires." -> "les villes partenaires.")."""
    return _REQUEST.sub("", question, count=1)
