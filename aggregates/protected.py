"""Words a rule may not name: protected attributes and their known proxies, in the
federation's languages (English, Dutch, German, Italian and French).

A rule that rewards by nationality, religion, political opinion, health, sex, union
membership and the like singles people out; so does one that rewards by where they live
(postcode, district, neighbourhood) or what they hold (a second passport), or by a place
only one faith visits. Every name in a rule is normalised first: accents are dropped,
camelCase is split, case is folded and digits and separators become word breaks, so
`recycling_postcode_1071`, `tweedePaspoort` and `Nationalité` are read as plain words.

A word list is a tripwire, not a guarantee: see docs/RIGHTS.md for what it cannot catch.
"""

from __future__ import annotations

import re
import unicodedata

# Found anywhere in a normalised name, compounds included ("gemeindebezirk", "tweedepaspoort").
ANYWHERE = (
    # nationality, citizenship, passports
    "nationalit",  # nationality, nationaliteit, nationalität, nationalité
    "nazionalit",
    "citizenship",
    "staatsangeh",
    "staatsburger",
    "burgerschap",
    "cittadinanz",
    "citoyennet",
    "passport",
    "paspoort",
    "passeport",
    "passaport",
    "reisepass",
    "personalausweis",
    "identiteitskaart",
    # where someone lives
    "postcode",
    "postleitzahl",
    "postalcode",
    "zipcode",
    "codepostal",
    "codicepostale",
    "bezirk",
    "stadsdeel",
    "stadtteil",
    "arrondissement",
    "circoscrizion",
    "neighbourhood",
    "neighborhood",
    "nachbarschaft",
    "quartier",  # quartier, quartiere
    # religion and religious places
    "religi",  # religion, religie, religione, religious
    "mosque",
    "moskee",
    "moschee",
    "moschea",
    "synagog",
    "sinagog",
    "gurdwara",
    # political opinion, parties, unions
    "partij",
    "partei",
    "gewerkschaft",
    "vakbond",
    "vakbeweging",
    "sindacat",
    "sindacal",
    "syndicat",
    "syndical",
    # origin and migration
    "migra",  # migration, immigratie, migrazione, migrant
    "allochto",
    "auslander",
    "moedertaal",
    "muttersprache",
    "languematernelle",
    "linguamadre",
    "mothertongue",
    "herkomst",
    "herkunft",
)

# Found at the start of a word only, so "trace" is not "race" and "trade" not "ra...".
WORD_START = (
    "ethni",
    "etni",
    "race",
    "racial",
    "rasse",
    "razza",
    "faith",
    "geloof",
    "glaube",
    "croyance",
    "church",
    "kerk",
    "kirche",
    "eglise",
    "chiesa",
    "temple",
    "tempel",
    "politi",  # political, politiek, politisch, politique, politica
    "party",
    "party_member",
    "union",
    "trade_union",
    "health",
    "gezondheid",
    "gesundheit",
    "disab",
    "handicap",
    "behinder",
    "medical",
    "medisch",
    "medizin",
    "pregnan",
    "zwanger",
    "schwanger",
    "enceinte",
    "incinta",
    "gravidanz",
    "sexu",
    "sessual",
    "gender",
    "geslacht",
    "geschlecht",
    "birthplace",
    "country_of_birth",
    "geboorteland",
    "geburtsland",
    "pays_de_naissance",
    "paese_di_nascita",
    "language_of_origin",
    "home_language",
    "immigra",
    "asiel",
    "asyl",
    "refugee",
    "vluchteling",
    "fluchtling",
    "rifugiat",
    "refugie",
    "genetic",
    "genetisch",
    "biometric",
    "biometrisch",
    "criminal",
    "strafblad",
    "vorstrafe",
    "casier_judiciaire",
    "casellario",
    "district",
    "distretto",
    "wijk",
    "buurt",
    "kiez",
    "viertel",
    "rione",
    "vicinato",
    "voisinage",
    "zip",
    "postal",
    "post_code",
)

# Whole words only: short words that are part of too many harmless ones.
WHOLE_WORD = ("ras", "plz", "parti", "partito", "fede", "sante", "origin", "origine", "municipio")


def normalise(word: str) -> str:
    """`tweedePaspoort`, `Recycling-Postcode 1071` -> `tweede_paspoort`, `recycling_postcode`."""
    split = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", word)
    plain = unicodedata.normalize("NFKD", split.replace("ß", "ss"))
    plain = "".join(ch for ch in plain if not unicodedata.combining(ch))
    return re.sub(r"[^a-z]+", "_", plain.lower()).strip("_")


def protected_term(word: str) -> str | None:
    """The protected term `word` refers to, or None."""
    norm = normalise(word)
    joined = norm.replace("_", "")
    for term in ANYWHERE:
        if term in joined:
            return term
    padded = "_" + norm
    for term in WORD_START:
        if "_" + term in padded:
            return term
    tokens = set(norm.split("_"))
    for term in WHOLE_WORD:
        if term in tokens:
            return term
    return None
