"""Writes a harder, independent labelled corpus for the personal-data detector.

This is a second evaluation set, written separately from corpus.jsonl with
its own templates, names, street lists and layouts. It holds synthetic
English and French public-sector documents: casework e-mails, benefit forms,
IT incident tickets with log excerpts, HR letters, meeting minutes, FOIA and
CADA request logs, CSV exports, supplier records and chat transcripts. It is
harder than the first corpus on purpose:

* identifiers in several layouts (phones with dots, spaces, +1/+33 and
  "(0)", SSNs with spaces or no separators, IBANs grouped or packed, card
  numbers without spaces, NIRs with the key set apart);
* names without titles, in lower case in chat lines, hyphenated or compound
  French names with particles, names in signatures, lists, CSV rows and
  "Name: ... | Phone: ..." tables;
* addresses with suite/apartment numbers and French "bis"/"ter" numbers;
* dates of birth written out in words or as numbers, next to other dates
  that are not dates of birth;
* IPv4 addresses inside log lines, secrets inside tickets, classification
  markings as banners and inside brackets;
* at least 40 texts with no personal data at all, built from traps: case
  and order numbers, legal references, amounts, percentages, ZIP codes,
  ISO dates, version numbers, product codes that look like phone numbers,
  numbers that fail their check digit, agency and place names, and words
  such as "Secret Service" or "confidential" in ordinary sentences.

Every identifier that has a check is valid (Luhn for cards, SIREN and
SIRET; mod 97 for IBANs and the NIR key; 3-7-1 for ABA routing numbers;
the allocation rules for SSN, ITIN and EIN prefixes). Everything is
synthetic: names are combined at random and e-mail domains are example
domains.

Label conventions:
  PERSON               the name as written, without any title;
  STREET_ADDRESS       house number (with "bis"/"ter") + street type and
                       name only; the suite/apartment, ZIP and city that
                       follow on the same line are not part of the span;
  DATE_OF_BIRTH        the date only, not "born on" / "né le";
  PHONE_NUMBER         includes a written +1 / +33 / "(0)", not extensions;
  SECRET               the key or token; for PEM blocks, from the BEGIN
                       line to the END line inclusive;
  CLASSIFICATION_MARKING  the marking token only, without brackets.

Format: one JSON object per line,
  {"language": "en"|"fr", "text": ..., "entities": [{"type", "start", "end"}]}
with offsets in characters (Python string indices), end exclusive.

Deterministic (fixed seed, standard library only). Regenerate with:

    python3 tests/protect/make_hard_corpus.py > tests/protect/hard_corpus.jsonl

A summary per type and language is printed to stderr.
"""

import base64
import json
import string
import sys
import unicodedata
from collections import Counter
import random

R = random.Random(424242)

DIGITS = "0123456789"
ALNUM = string.ascii_letters + string.digits


def rdigits(n):
    return "".join(R.choice(DIGITS) for _ in range(n))


# ---------------------------------------------------------------------------
# Check-digit helpers
# ---------------------------------------------------------------------------

def luhn_ok(number):
    total = 0
    for i, c in enumerate(reversed(number)):
        d = int(c)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def luhn_append(body):
    for c in DIGITS:
        if luhn_ok(body + c):
            return body + c
    raise AssertionError("unreachable")


def luhn_fail(length):
    """A digit string of the given length that does NOT pass Luhn."""
    while True:
        s = R.choice("123456789") + rdigits(length - 1)
        if not luhn_ok(s):
            return s


def iban_ok(s):
    s = s.replace(" ", "")
    rearranged = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def aba_ok(s):
    w = [3, 7, 1] * 3
    return len(s) == 9 and sum(int(d) * k for d, k in zip(s, w)) % 10 == 0


def nir_ok(s):
    s = s.replace(" ", "")
    body, key = s[:13], int(s[13:])
    numeric = body.replace("2A", "19").replace("2B", "18")
    return key == 97 - int(numeric) % 97


# ---------------------------------------------------------------------------
# Identifier generators
# ---------------------------------------------------------------------------

def card_number():
    brand = R.choice(["visa", "visa", "mc", "mc2", "amex", "discover", "jcb"])
    if brand == "visa":
        prefix, length = "4", 16
    elif brand == "mc":
        prefix, length = str(R.randint(51, 55)), 16
    elif brand == "mc2":
        prefix, length = str(R.randint(2221, 2720)), 16
    elif brand == "amex":
        prefix, length = R.choice(["34", "37"]), 15
    elif brand == "discover":
        prefix, length = R.choice(["6011", "65", str(R.randint(644, 649))]), 16
    else:
        prefix, length = str(R.randint(3528, 3589)), 16
    return luhn_append(prefix + rdigits(length - len(prefix) - 1))


def card():
    n = card_number()
    style = R.random()
    if style < 0.5:
        return n
    if len(n) == 15:
        sep = R.choice([" ", "-"])
        return f"{n[:4]}{sep}{n[4:10]}{sep}{n[10:]}"
    sep = " " if style < 0.8 else "-"
    return sep.join(n[i:i + 4] for i in range(0, 16, 4))


def _es_dc(ten):
    weights = [1, 2, 4, 8, 5, 10, 9, 7, 3, 6]
    d = 11 - sum(int(c) * w for c, w in zip(ten, weights)) % 11
    return {10: 1, 11: 0}.get(d, d)


_IT_ODD = [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12,
           14, 16, 10, 22, 25, 24, 23]


def _it_cin(s):
    total = 0
    for i, c in enumerate(s):
        v = int(c) if c.isdigit() else ord(c) - 65
        total += _IT_ODD[v] if i % 2 == 0 else v
    return chr(65 + total % 26)


def iban_raw(country):
    if country == "FR":
        bank, branch, account = rdigits(5), rdigits(5), rdigits(11)
        key = 97 - (89 * int(bank) + 15 * int(branch) + 3 * int(account)) % 97
        bban = f"{bank}{branch}{account}{key:02d}"
    elif country == "DE":
        bban = R.choice("1234567") + rdigits(7) + rdigits(10)
    elif country == "ES":
        bank, branch, account = rdigits(4), rdigits(4), rdigits(10)
        bban = f"{bank}{branch}{_es_dc('00' + bank + branch)}{_es_dc(account)}{account}"
    elif country == "BE":
        first = rdigits(10)
        check = int(first) % 97 or 97
        bban = f"{first}{check:02d}"
    elif country == "IT":
        rest = rdigits(5) + rdigits(5) + rdigits(12)
        bban = _it_cin(rest) + rest
    else:
        raise ValueError(country)
    numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
    check = 98 - int(numeric) % 97
    raw = f"{country}{check:02d}{bban}"
    expected = {"FR": 27, "DE": 22, "ES": 24, "BE": 16, "IT": 27}[country]
    assert len(raw) == expected and iban_ok(raw), raw
    return raw


def iban(country):
    raw = iban_raw(country)
    if R.random() < 0.55:
        return " ".join(raw[i:i + 4] for i in range(0, len(raw), 4))
    return raw


def ssn_parts():
    while True:
        area = R.randint(1, 899)
        if area != 666:
            break
    return f"{area:03d}", f"{R.randint(1, 99):02d}", f"{R.randint(1, 9999):04d}"


def ssn(style=None):
    a, g, s = ssn_parts()
    style = style or R.choice(["dash", "dash", "space", "none"])
    return {"dash": f"{a}-{g}-{s}", "space": f"{a} {g} {s}", "none": f"{a}{g}{s}"}[style]


ITIN_GROUPS = list(range(50, 66)) + list(range(70, 89)) + [90, 91, 92] + list(range(94, 100))


def itin():
    a = f"9{R.randint(0, 99):02d}"
    g = R.choice(ITIN_GROUPS)
    s = f"{R.randint(0, 9999):04d}"
    return f"{a} {g} {s}" if R.random() < 0.2 else f"{a}-{g}-{s}"


EIN_PREFIXES = (["01", "02", "03", "04", "05", "06"] + [f"{i:02d}" for i in range(10, 17)]
                + [f"{i:02d}" for i in range(20, 28)] + [f"{i:02d}" for i in range(30, 49)]
                + [f"{i:02d}" for i in range(50, 69)] + [f"{i:02d}" for i in range(71, 78)]
                + [f"{i:02d}" for i in range(80, 89)] + [f"{i:02d}" for i in range(90, 96)]
                + ["98", "99"])


def ein(packed=False):
    p = R.choice(EIN_PREFIXES)
    body = rdigits(7)
    return f"{p}{body}" if packed else f"{p}-{body}"


def aba():
    prefix = R.choice([f"{i:02d}" for i in range(1, 13)] + [f"{i:02d}" for i in range(21, 33)])
    body = prefix + rdigits(6)
    w = [3, 7, 1, 3, 7, 1, 3, 7]
    total = sum(int(d) * k for d, k in zip(body, w))
    out = body + str((10 - total % 10) % 10)
    assert aba_ok(out)
    return out


def passport():
    if R.random() < 0.4:
        return R.choice("ACEFGHJKLMNPRSTUVWXZ") + rdigits(8)
    return R.choice("123456789") + rdigits(8)


FR_DEPTS = [f"{i:02d}" for i in range(1, 96) if i != 20] + ["2A", "2B"]


def nir(sex=None, year=None, month=None):
    """NIR; sex 1/2, year and month of birth taken from the holder when known."""
    sex = sex or R.choice("12")
    year = R.randint(0, 99) if year is None else year % 100
    month = month or R.randint(1, 12)
    dept = R.choice(FR_DEPTS + ["2A", "2B", "29", "56", "35", "93"])
    commune = R.randint(1, 990)
    order = R.randint(1, 999)
    body = f"{sex}{year:02d}{month:02d}{dept}{commune:03d}{order:03d}"
    key = 97 - int(body.replace("2A", "19").replace("2B", "18")) % 97
    full = f"{body}{key:02d}"
    assert nir_ok(full)
    style = R.random()
    if style < 0.4:
        return full
    if style < 0.8:
        return f"{full[0]} {full[1:3]} {full[3:5]} {full[5:7]} {full[7:10]} {full[10:13]} {full[13:]}"
    return f"{full[:13]} {full[13:]}"


def siren_raw():
    return luhn_append(R.choice("123456789") + rdigits(7))


def siren(raw=None):
    n = raw or siren_raw()
    return n if R.random() < 0.35 else f"{n[:3]} {n[3:6]} {n[6:]}"


def siret(siren_digits=None):
    s = siren_digits or siren_raw()
    n = luhn_append(s + "000" + rdigits(1)) if R.random() < 0.6 else luhn_append(s + rdigits(4))
    assert luhn_ok(n) and len(n) == 14
    style = R.random()
    if style < 0.3:
        return n
    if style < 0.8:
        return f"{n[:3]} {n[3:6]} {n[6:9]} {n[9:]}"
    return f"{n[:9]} {n[9:]}"


# Valid-looking NANP area codes (no N11, no 555 area).
US_AREAS = [202, 206, 213, 301, 305, 312, 404, 410, 415, 503, 571, 608, 612,
            646, 702, 713, 720, 808, 907, 919, 971, 984]


def us_phone():
    area = R.choice(US_AREAS)
    if R.random() < 0.08:
        exch, line = 555, f"01{R.randint(0, 99):02d}"
    else:
        while True:
            exch = R.randint(201, 989)
            if exch % 100 != 11 and exch != 555:
                break
        line = f"{R.randint(0, 9999):04d}"
    return R.choice([
        f"({area}) {exch} {line}",
        f"({area}) {exch}-{line}",
        f"+1-{area}-{exch}-{line}",
        f"+1 {area} {exch} {line}",
        f"+1 ({area}) {exch}-{line}",
        f"{area}.{exch}.{line}",
        f"{area}.{exch}.{line}",
        f"{area}-{exch}-{line}",
        f"1-{area}-{exch}-{line}",
    ])


def fr_phone():
    first = R.choice("1234567996")
    pairs = [f"{R.randint(0, 99):02d}" for _ in range(4)]
    return R.choice([
        f"0{first} " + " ".join(pairs),
        f"0{first} " + " ".join(pairs),
        f"0{first}." + ".".join(pairs),
        f"+33 (0){first} " + " ".join(pairs),
        f"+33 {first} " + " ".join(pairs),
        f"0{first}" + "".join(pairs),
        f"0{first}-" + "-".join(pairs),
        f"+33{first}" + "".join(pairs),
    ])


PUBLIC_FIRST = [23, 31, 45, 52, 62, 66, 81, 91, 104, 109, 131, 151, 176, 185, 193, 203, 212, 217]


def ipv4():
    kind = R.random()
    if kind < 0.2:
        return f"10.{R.randint(0, 255)}.{R.randint(0, 255)}.{R.randint(1, 254)}"
    if kind < 0.3:
        return f"192.168.{R.randint(0, 255)}.{R.randint(1, 254)}"
    if kind < 0.38:
        return f"172.{R.randint(16, 31)}.{R.randint(0, 255)}.{R.randint(1, 254)}"
    return f"{R.choice(PUBLIC_FIRST)}.{R.randint(0, 255)}.{R.randint(0, 255)}.{R.randint(1, 254)}"


def aws_key():
    return "AKIA" + "".join(R.choice(string.ascii_uppercase + "234567") for _ in range(16))


def github_token():
    return "ghp_" + "".join(R.choice(ALNUM) for _ in range(36))


def slack_token():
    tail = "".join(R.choice(ALNUM) for _ in range(24))
    return f"xoxb-{R.choice('123456789')}{rdigits(10)}-{R.choice('123456789')}{rdigits(12)}-{tail}"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwt():
    header = b64url(json.dumps({"alg": R.choice(["HS256", "RS256"]), "typ": "JWT"},
                               separators=(",", ":")).encode())
    payload = b64url(json.dumps({"sub": rdigits(8), "role": R.choice(["agent", "admin", "svc"]),
                                 "iat": 1760000000 + R.randint(0, 9999999)},
                                separators=(",", ":")).encode())
    sig = b64url(bytes(R.randrange(256) for _ in range(32)))
    return f"{header}.{payload}.{sig}"


def pem_block():
    label = R.choice(["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY"])
    body = base64.b64encode(bytes(R.randrange(256) for _ in range(R.randint(150, 260)))).decode()
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----"


def secret(allow_pem=True):
    kinds = ["aws", "gh", "slack", "jwt"] + (["pem"] if allow_pem else [])
    k = R.choice(kinds)
    return k, {"aws": aws_key, "gh": github_token, "slack": slack_token,
               "jwt": jwt, "pem": pem_block}[k]()


MARKINGS_EN = ["CUI", "CUI", "CUI//SP-PRVCY", "CUI//SP-PRVCY", "FOUO", "SECRET//NOFORN",
               "OFFICIAL-SENSITIVE", "TOP SECRET//NOFORN", "SECRET//REL TO USA, FVEY"]
MARKINGS_FR = ["DIFFUSION RESTREINTE", "DIFFUSION RESTREINTE", "CONFIDENTIEL DEFENSE",
               "CONFIDENTIEL DÉFENSE", "SECRET DEFENSE"]


# ---------------------------------------------------------------------------
# Names, places, dates
# ---------------------------------------------------------------------------

GIVEN_EN = ["Priya", "Daniel", "Aaliyah", "Marcus", "Sofia", "Oluwaseun", "Hannah",
            "Tyrone", "Mei-Ling", "Rafael", "Bridget", "Kwame", "Ingrid", "Diego",
            "Naomi", "Connor", "Fatima", "Wesley", "Yuki", "Graham", "Lucia",
            "Desmond", "Rosalind", "Tobias", "Imani", "Ezekiel", "Margot",
            "Santiago", "Keisha", "Brendan", "Anjali", "Dmitri"]
FAMILY_EN = ["Raman", "Okafor", "Whitfield", "Castellanos", "O'Brien", "Nakamura",
             "Fitzgerald", "Abernathy", "Kowalski", "Delgado", "McAllister",
             "Henderson-Park", "Lindqvist", "Osei", "Vasquez", "Pemberton", "Huang",
             "Gallagher", "Achebe", "Sorensen", "Thornton", "Okonkwo", "Villanueva",
             "Bergstrom", "Maldonado", "Prescott", "Adeyemi", "Kaczmarek", "Harrington",
             "Iyer"]
GIVEN_FR = ["Jean-Baptiste", "Marie-Hélène", "Anne-Sophie", "Pierre-Yves", "Gwenaëlle",
            "Loïc", "Hélène", "Benoît", "Séverine", "Yannick", "Maëlle", "Thibault",
            "Aurélie", "Jean-Marc", "Ophélie", "Mathéo", "Soazig", "Karim", "Amélie",
            "Rémi", "Nadia", "Bérengère", "François-Xavier", "Éloïse", "Gaëtan", "Inès",
            "Mamadou", "Clémence", "Ronan", "Yasmina"]
FEMALE_FR = {"Marie-Hélène", "Anne-Sophie", "Gwenaëlle", "Hélène", "Séverine", "Maëlle",
             "Aurélie", "Ophélie", "Soazig", "Amélie", "Nadia", "Bérengère", "Éloïse", "Inès",
             "Clémence", "Yasmina"}
FAMILY_FR = ["Le Goff", "Dubois-Martin", "de la Fontaine", "Kerléo", "Ben Saïd",
             "N'Diaye", "Lefèvre", "Le Bihan", "Rousselot", "Da Silva", "Morvan",
             "Vasseur", "Guérin", "de Villiers", "Pelletier", "Chauvin", "Lemaire-Duval",
             "Haddad", "Tessier", "Marchand", "Quéré", "Saint-Amand", "Le Floch",
             "Benhamou", "Perrot", "Van Damme", "Caradec", "Lucas-Ferrand", "d'Arcy",
             "Abgrall"]

US_CITIES = [("Reno", "NV", "89501"), ("Tacoma", "WA", "98402"), ("Baltimore", "MD", "21201"),
             ("Albuquerque", "NM", "87102"), ("Durham", "NC", "27701"), ("Boise", "ID", "83702"),
             ("Savannah", "GA", "31401"), ("Madison", "WI", "53703"), ("Arlington", "VA", "22201"),
             ("Omaha", "NE", "68102"), ("Spokane", "WA", "99201"), ("Dayton", "OH", "45402")]
US_STREET_NAMES = ["Pennsylvania", "Oak Hollow", "Juniper", "Chesapeake", "Magnolia", "Old Mill",
                   "Fairview", "Wisteria", "Kingsbridge", "Harbor View", "Sycamore", "Brookside",
                   "Elmwood", "Quarry", "Lafayette", "Willow Creek", "Cypress Point", "Ridgecrest",
                   "Bay Laurel", "Stonegate"]
US_STREET_TYPES = ["Avenue", "Street", "Drive", "Road", "Lane", "Boulevard", "Court", "Parkway",
                   "Terrace", "Way", "Place", "Ave", "St", "Rd", "Blvd", "Ct", "Pkwy"]
US_UNITS = ["Apt 4B", "Apt. 12", "Suite 210", "Ste 1400", "Unit 7", "#305", "Apt 2C", "Suite 300"]

FR_STREETS = ["rue des Capucins", "avenue Jean-Jaurès", "rue du Général-Leclerc",
              "boulevard de la Croix-Rousse", "rue Paul-Bert", "impasse des Glycines",
              "rue Lamartine", "rue du Faubourg-Saint-Antoine", "allée Saint-Exupéry",
              "quai des Tanneurs", "chemin du Moulin-Vert", "cours Gambetta",
              "place de Strasbourg", "rue des Écoles", "route de Quimper", "rue de Siam",
              "avenue de la Libération", "rue Sainte-Catherine", "boulevard Vauban",
              "rue de l'Ancienne-Comédie"]
FR_CITIES = [("29200", "Brest"), ("35000", "Rennes"), ("69004", "Lyon"), ("33000", "Bordeaux"),
             ("59000", "Lille"), ("13001", "Marseille"), ("67000", "Strasbourg"),
             ("44000", "Nantes"), ("31000", "Toulouse"), ("75011", "Paris"),
             ("20000", "Ajaccio"), ("56100", "Lorient"), ("21000", "Dijon")]

MONTHS_EN = ["January", "February", "March", "April", "May", "June", "July", "August",
             "September", "October", "November", "December"]
MONTHS_FR = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
             "septembre", "octobre", "novembre", "décembre"]


def strip_accents(s):
    return "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))


class Person:
    def __init__(self, given, family, lang, middle=None):
        self.given, self.family, self.lang, self.middle = given, family, lang, middle
        self.female = given in FEMALE_FR
        self.e = "e" if self.female else ""  # French agreement: né / née

    def name(self, style=None):
        if self.lang == "en":
            if style == "lower":
                return f"{self.given} {self.family}".lower()
            if self.middle:
                return f"{self.given} {self.middle}. {self.family}"
            return f"{self.given} {self.family}"
        style = style or R.choice(["plain", "plain", "plain", "upper", "upper_first"])
        if style == "lower":
            return f"{self.given} {self.family}".lower()
        if style == "upper":
            return f"{self.given} {self.family.upper()}"
        if style == "upper_first":
            return f"{self.family.upper()} {self.given}"
        return f"{self.given} {self.family}"

    def email(self, domains, plus=None):
        g = strip_accents(self.given).lower()
        f = strip_accents(self.family).lower().replace(" ", "").replace("'", "")
        initials = "".join(part[0] for part in g.split("-"))
        local = R.choice([f"{g}.{f}", f"{g}.{f}", f"{initials}.{f}", f"{g[0]}{f}",
                          f"{g}_{f}", f"{f}.{g}", f"{g}.{f}{R.randint(1, 99)}"])
        if plus is None:
            plus = R.random() < 0.25
        if plus:
            tags = ["benefits", "foia", "claims", "2026"] if self.lang == "en" else ["dossier", "caf", "rh", "2026"]
            local += "+" + R.choice(tags)
        return f"{local}@{R.choice(domains)}"


def person_en():
    middle = R.choice(string.ascii_uppercase.replace("X", "")) if R.random() < 0.15 else None
    return Person(R.choice(GIVEN_EN), R.choice(FAMILY_EN), "en", middle)


def person_fr():
    return Person(R.choice(GIVEN_FR), R.choice(FAMILY_FR), "fr")


def people(factory, n):
    seen, out = set(), []
    while len(out) < n:
        p = factory()
        if (p.given, p.family) not in seen and p.given not in {q.given for q in out}:
            seen.add((p.given, p.family))
            out.append(p)
    return out


EN_DOMAINS = ["example.com", "mail.example.org", "inbox.example.net", "field.ssa.example.gov",
              "hr.dol.example.gov", "benefits.state.example.us", "corp.example.com"]
FR_DOMAINS = ["exemple.fr", "courriel.example.fr", "agents.interieur.example.fr", "caf.example.fr",
              "mairie-brest.example.fr", "laposte.example.net", "fai.example.fr"]


def us_street():
    number = str(R.choice([R.randint(1, 99), R.randint(100, 999), R.randint(1000, 19999)]))
    name = R.choice(US_STREET_NAMES)
    typ = R.choice(US_STREET_TYPES)
    d = R.random()
    if d < 0.15:
        return f"{number} {name} {typ} {R.choice(['NW', 'NE', 'SW', 'SE'])}"
    if d < 0.25:
        return f"{number} {R.choice(['N', 'S', 'E', 'W'])} {name} {typ}"
    return f"{number} {name} {typ}"


def us_city_line():
    city, st, z = R.choice(US_CITIES)
    return f"{city}, {st} {z}"


def fr_street():
    n = R.randint(1, 180)
    form = R.random()
    if form < 0.2:
        number = f"{n} bis"
    elif form < 0.3:
        number = f"{n} ter"
    elif form < 0.38:
        number = f"{n}{R.choice('AB')}"
    elif form < 0.5:
        number = f"{n},"
    else:
        number = str(n)
    return f"{number} {R.choice(FR_STREETS)}"


def fr_city_line():
    cp, city = R.choice(FR_CITIES)
    return f"{cp} {city}"


def birth():
    return R.randint(1941, 2006), R.randint(1, 12), R.randint(1, 28)


def dob_en():
    y, m, d = birth()
    mon = MONTHS_EN[m - 1]
    return R.choice([
        f"{d} {mon} {y}", f"{mon} {d}, {y}", f"{m:02d}/{d:02d}/{y}", f"{m}/{d}/{y % 100:02d}",
        f"{y}-{m:02d}-{d:02d}", f"{d} {mon[:3]} {y}", f"{mon[:3]} {d}, {y}", f"{m:02d}-{d:02d}-{y}",
    ])


def dob_fr(ymd=None):
    y, m, d = ymd or birth()
    day = "1er" if d == 1 else str(d)
    return R.choice([
        f"{day} {MONTHS_FR[m - 1]} {y}", f"{day} {MONTHS_FR[m - 1]} {y}", f"{d:02d}/{m:02d}/{y}",
        f"{d:02d}/{m:02d}/{y}", f"{d:02d}.{m:02d}.{y}", f"{y}-{m:02d}-{d:02d}", f"{d:02d}-{m:02d}-{y}",
    ])


def iso_date(year=2026):
    return f"{year}-{R.randint(1, 12):02d}-{R.randint(1, 28):02d}"


def case_no():
    return f"{R.choice([2025, 2026])}-{R.randint(1, 12):02d}{R.randint(1, 28):02d}-{R.randint(10, 99)}"


# ---------------------------------------------------------------------------
# Document builder
# ---------------------------------------------------------------------------

class Doc:
    def __init__(self, language):
        self.language = language
        self.parts = []
        self.entities = []
        self.length = 0

    def t(self, text):
        self.parts.append(text)
        self.length += len(text)
        return self

    def e(self, kind, text):
        self.entities.append({"type": kind, "start": self.length, "end": self.length + len(text)})
        return self.t(text)

    def record(self):
        return {"language": self.language, "text": "".join(self.parts), "entities": self.entities}


# ---------------------------------------------------------------------------
# English documents
# ---------------------------------------------------------------------------

def en_casework_email():
    d = Doc("en")
    client, worker = people(person_en, 2)
    mark = R.choice(MARKINGS_EN[:5]) if R.random() < 0.5 else None
    if mark:
        d.e("CLASSIFICATION_MARKING", mark).t("\n\n")
    wmail = worker.email(["field.ssa.example.gov", "hr.dol.example.gov", "benefits.state.example.us"], plus=False)
    d.t("From: ").e("PERSON", worker.name()).t(" <").e("EMAIL_ADDRESS", wmail).t(">\n")
    d.t("To: intake-team@benefits.state.example.us\n")
    d.t(f"Subject: Case {case_no()} - {R.choice(['overpayment waiver', 'address change', 'appeal hearing', 'SNAP recertification'])}\n\n")
    d.t("Hi all,\n\n")
    d.t(R.choice(["I met with ", "Spoke this morning with ", "Walk-in today: "])).e("PERSON", client.name())
    d.t(R.choice([", who was born on ", " (born ", ", DOB "]))
    d.e("DATE_OF_BIRTH", dob_en())
    d.t(R.choice([". ", "). ", ". "]))
    if R.random() < 0.75:
        form = R.choice(["dash", "space", "none"])
        d.t(R.choice(["Their SSN is ", "Social security number given as ", "SSN on the 1099: "]))
        d.e("US_SSN", ssn(form)).t(". ")
    d.t(R.choice(["Best callback number is ", "They can be reached at ", "Cell: "]))
    d.e("PHONE_NUMBER", us_phone())
    if R.random() < 0.3:
        d.t(f" ext. {R.randint(100, 999)}")
    d.t(", or by e-mail at ").e("EMAIL_ADDRESS", client.email(EN_DOMAINS)).t(".\n")
    d.t(R.choice(["New mailing address: ", "They moved to ", "Update the address to "]))
    d.e("STREET_ADDRESS", us_street())
    if R.random() < 0.6:
        d.t(", " + R.choice(US_UNITS))
    d.t(", " + us_city_line() + ".\n")
    d.t(f"The notice dated {iso_date()} listed an overpayment of ${R.randint(100, 9999):,}.{R.randint(0, 99):02d}; "
        f"they are asking for a waiver under section {R.randint(200, 299)}(b).\n\n")
    d.t(R.choice(["Regards,\n", "Thanks,\n", "Best,\n", "-- \n"])).e("PERSON", worker.name())
    d.t("\n" + R.choice(["Claims Specialist, Social Security Administration",
                         "Benefits Analyst, Department of Labor",
                         "Caseworker II, County Human Services"]))
    if mark:
        d.t("\n\n").e("CLASSIFICATION_MARKING", mark)
    return d.record()


def en_benefit_form():
    d = Doc("en")
    p = person_en()
    table = R.random() < 0.4
    d.t(R.choice(["APPLICATION FOR UNEMPLOYMENT INSURANCE - PART A\n",
                  "Housing Assistance Intake Form (rev. 03/2025)\n",
                  "Disability Benefits Claim - Applicant Information\n"]))
    if R.random() < 0.4:
        d.t("[").e("CLASSIFICATION_MARKING", R.choice(["CUI", "CUI//SP-PRVCY", "FOUO"])).t(" when filled in]\n")
    sep = " | " if table else "\n"
    d.t("Name: ").e("PERSON", p.name()).t(sep)
    d.t(R.choice(["Date of birth (MM/DD/YYYY): ", "DOB: ", "Birth date: "]))
    y, m, dd = birth()
    d.e("DATE_OF_BIRTH", f"{m:02d}/{dd:02d}/{y}").t(sep)
    if R.random() < 0.7:
        d.t(R.choice(["SSN: ", "Social Security No.: ", "Social security number: "]))
        d.e("US_SSN", ssn()).t(sep)
    else:
        d.t("ITIN: ").e("US_ITIN", itin()).t(sep)
    d.t("Phone: ").e("PHONE_NUMBER", us_phone()).t(sep)
    d.t("Email: ").e("EMAIL_ADDRESS", p.email(EN_DOMAINS)).t("\n")
    d.t("Home address: ").e("STREET_ADDRESS", us_street())
    if R.random() < 0.5:
        d.t(", " + R.choice(US_UNITS))
    d.t(", " + us_city_line() + "\n")
    if R.random() < 0.7:
        d.t("Direct deposit routing no.: ").e("US_BANK_ROUTING", aba())
        d.t(f"   Account type: {R.choice(['checking', 'savings'])}\n")
    if R.random() < 0.5:
        d.t(f"Last employer: {R.choice(['Harbor Freight Logistics LLC', 'Summit Dental Group', 'Tri-County Transit'])}, EIN ")
        d.e("US_EIN", ein()).t("\n")
    d.t(f"Claim week ending {iso_date()}; weekly benefit amount ${R.randint(200, 800)}.00; "
        f"form ID UI-{R.randint(100, 999)}-{R.randint(10, 99)}.")
    return d.record()


def en_it_ticket():
    d = Doc("en")
    reporter, fixer = people(person_en, 2)
    inc = f"INC{R.randint(1000000, 9999999)}"
    if R.random() < 0.6:
        d.t("[").e("CLASSIFICATION_MARKING", R.choice(MARKINGS_EN)).t("] ")
    d.t(f"{inc} - {R.choice(['credential exposure in CI logs', 'token committed to repository', 'suspicious logins on VPN gateway'])}\n")
    d.t("Reported by: ").e("PERSON", reporter.name()).t(" (").e("EMAIL_ADDRESS", reporter.email(["corp.example.com", "it.example.gov"])).t(")\n")
    d.t(f"Priority: P{R.randint(1, 3)} | Opened: {iso_date()} {R.randint(0, 23):02d}:{R.randint(0, 59):02d} UTC\n")
    d.t("Log excerpt:\n")
    for _ in range(R.randint(1, 3)):
        ts = f"{iso_date()}T{R.randint(0, 23):02d}:{R.randint(0, 59):02d}:{R.randint(0, 59):02d}Z"
        style = R.random()
        if style < 0.35:
            d.t(f"{ts} sshd[{R.randint(1000, 65000)}]: Failed password for invalid user {R.choice(['admin', 'oracle', 'test', 'svc_backup'])} from ")
            d.e("IP_ADDRESS", ipv4()).t(f" port {R.randint(1024, 65535)} ssh2\n")
        elif style < 0.7:
            d.e("IP_ADDRESS", ipv4()).t(f" - - [{R.randint(1, 28):02d}/Apr/2026:{R.randint(0, 23):02d}:{R.randint(0, 59):02d}:07 +0000] "
                                        f"\"GET /api/v2/cases/{case_no()} HTTP/1.1\" {R.choice([200, 401, 403, 404])} {R.randint(200, 9000)}\n")
        else:
            d.t(f"{ts} WARN vpn-gw: session from ").e("IP_ADDRESS", ipv4()).t(" to ")
            d.e("IP_ADDRESS", ipv4()).t(f" exceeded {R.randint(5, 50)} retries (build v{R.randint(1, 4)}.{R.randint(0, 20)}.{R.randint(0, 9)})\n")
    kind, sec = secret()
    if kind == "pem":
        d.t("The following block was found in the job output:\n").e("SECRET", sec).t("\n")
    elif kind == "jwt":
        d.t("Request header seen in the proxy log: Authorization: Bearer ").e("SECRET", sec).t("\n")
    elif kind == "aws":
        d.t("The build log printed AWS_ACCESS_KEY_ID=").e("SECRET", sec).t("\n")
    elif kind == "gh":
        d.t("A personal access token ").e("SECRET", sec).t(" was pushed in .env.sample\n")
    else:
        d.t("Bot token in the channel export: ").e("SECRET", sec).t("\n")
    if R.random() < 0.35:
        k2, s2 = secret(allow_pem=False)
        d.t("Also rotated: ").e("SECRET", s2).t("\n")
    d.t("Resolution: key revoked and rotated by ").e("PERSON", fixer.name())
    d.t(f"; post-incident review scheduled for {iso_date()}.")
    return d.record()


def en_hr_letter():
    d = Doc("en")
    emp, hr = people(person_en, 2)
    d.t(f"{R.choice(MONTHS_EN)} {R.randint(1, 28)}, 2026\n\n")
    d.e("PERSON", emp.name()).t("\n").e("STREET_ADDRESS", us_street())
    if R.random() < 0.5:
        d.t(", " + R.choice(US_UNITS))
    d.t("\n" + us_city_line() + "\n\n")
    d.t("Dear ").e("PERSON", emp.name()).t(",\n\n")
    d.t(f"We are pleased to confirm your appointment as {R.choice(['Program Analyst', 'IT Specialist', 'Contact Representative'])}, "
        f"GS-{R.randint(5, 13)}, effective {iso_date()}. ")
    if R.random() < 0.8:
        lead = R.choice(["For Form I-9 you presented U.S. passport no. ", "Your passport number ", "Passport # "])
        d.t(lead).e("US_PASSPORT", passport())
        d.t(", which we have verified. " if lead.startswith("For") else " has been recorded. ")
    d.t("Our records show your date of birth as ").e("DATE_OF_BIRTH", dob_en()).t(". ")
    if R.random() < 0.6:
        d.t("Salary will be deposited using routing number ").e("US_BANK_ROUTING", aba()).t(". ")
    d.t("Please contact us at ").e("PHONE_NUMBER", us_phone()).t(" if any of this is incorrect.\n\n")
    if R.random() < 0.5:
        d.t("Employer Identification Number for your W-4: ").e("US_EIN", ein()).t("\n\n")
    d.t(R.choice(["Sincerely,\n", "Respectfully,\n"])).e("PERSON", hr.name()).t("\nHuman Resources Specialist\n")
    d.e("EMAIL_ADDRESS", hr.email(["hr.dol.example.gov", "corp.example.com"], plus=False))
    return d.record()


def en_minutes():
    d = Doc("en")
    ps = people(person_en, 5)
    mark = R.choice(["CUI", "CUI//SP-PRVCY", "FOUO", "OFFICIAL-SENSITIVE"])
    d.e("CLASSIFICATION_MARKING", mark).t("\n")
    d.t(f"MINUTES - Interagency Privacy Working Group - {iso_date()}\n")
    d.t("Attendees: ")
    for i, p in enumerate(ps[:4]):
        if i:
            d.t(", ")
        d.e("PERSON", p.name())
        if R.random() < 0.5:
            d.t(f" ({R.choice(['DOL', 'SSA', 'HHS', 'Treasury', 'GSA'])})")
    d.t("\n1. ").e("PERSON", ps[0].name())
    if R.random() < 0.5:
        d.t(" reported that a misconfigured share exposed claimant files; the host at ")
        d.e("IP_ADDRESS", ipv4()).t(" has been isolated.\n")
    else:
        d.t(" noted repeated scans from ").e("IP_ADDRESS", ipv4()).t("; the address is now blocked at the firewall.\n")
    d.t("2. Action: ").e("PERSON", ps[1].name()).t(" to call the claimant, ").e("PERSON", ps[4].name())
    d.t(" (DOB ").e("DATE_OF_BIRTH", dob_en()).t("), at ").e("PHONE_NUMBER", us_phone()).t(f" before {iso_date()}.\n")
    d.t(f"3. Budget: ${R.randint(10, 900)},000 obligated, {R.randint(1, 40)}.{R.randint(0, 9)}% unspent; "
        f"see Pub. L. {R.randint(100, 118)}-{R.randint(1, 300)}.\n")
    d.e("CLASSIFICATION_MARKING", mark)
    return d.record()


def en_foia_log():
    d = Doc("en")
    d.t("FOIA request log - week of " + iso_date() + "\n")
    d.t("Request ID | Requester | Contact | Received | Status\n")
    for p in people(person_en, R.randint(3, 5)):
        d.t(f"FOIA-2026-{R.randint(1, 9999):05d} | ").e("PERSON", p.name()).t(" | ")
        if R.random() < 0.6:
            d.e("EMAIL_ADDRESS", p.email(EN_DOMAINS, plus=R.random() < 0.4))
        else:
            d.e("PHONE_NUMBER", us_phone())
        d.t(f" | {iso_date()} | {R.choice(['perfected', 'fee waiver pending', 'closed - (b)(6)', 'referred to OIG'])}\n")
    d.t(f"Backlog: {R.randint(100, 900)} open requests; median age {R.randint(10, 90)} days.")
    return d.record()


def en_csv():
    d = Doc("en")
    cols = R.choice([["name", "dob", "ssn", "phone", "email"],
                     ["full_name", "tin", "phone", "street"],
                     ["name", "email", "ip", "dob"]])
    d.t(",".join(cols) + "\n")
    for p in people(person_en, R.randint(3, 5)):
        for i, c in enumerate(cols):
            if i:
                d.t(",")
            if c in ("name", "full_name"):
                d.e("PERSON", p.name())
            elif c == "dob":
                y, m, dd = birth()
                d.e("DATE_OF_BIRTH", R.choice([f"{y}-{m:02d}-{dd:02d}", f"{m:02d}/{dd:02d}/{y}"]))
            elif c == "ssn":
                d.e("US_SSN", ssn(R.choice(["dash", "none"])))
            elif c == "tin":
                if R.random() < 0.5:
                    d.e("US_SSN", ssn("dash"))
                else:
                    d.e("US_ITIN", itin())
            elif c == "phone":
                d.e("PHONE_NUMBER", us_phone())
            elif c == "email":
                d.e("EMAIL_ADDRESS", p.email(EN_DOMAINS))
            elif c == "ip":
                d.e("IP_ADDRESS", ipv4())
            elif c == "street":
                d.t('"').e("STREET_ADDRESS", us_street()).t(", " + R.choice(US_UNITS) + '"')
        d.t("\n")
    d.t(f"# exported {iso_date()} rows={R.randint(3, 5)} schema v{R.randint(1, 3)}.{R.randint(0, 9)}")
    return d.record()


def en_tax_case():
    d = Doc("en")
    tp, dep, agent = people(person_en, 3)
    d.t(f"Taxpayer Advocate case TAS-{R.randint(10000, 99999)}\n")
    d.t("taxpayer ").e("PERSON", tp.name()).t(", ITIN ").e("US_ITIN", itin())
    d.t(", claims dependent ").e("PERSON", dep.name()).t(" (born ").e("DATE_OF_BIRTH", dob_en()).t(").\n")
    d.t(f"Schedule C business: {R.choice(['Okra & Oak Catering', 'Northside Auto Glass', 'Bright Path Tutoring'])}, EIN ")
    d.e("US_EIN", ein(packed=R.random() < 0.3)).t(f". Balance due ${R.randint(1, 20)},{R.randint(100, 999)}.00.\n")
    if R.random() < 0.7:
        d.t("Refund to routing ").e("US_BANK_ROUTING", aba()).t(", or pay by card ").e("CREDIT_CARD", card()).t(".\n")
    else:
        d.t("Installment payments charged to card ").e("CREDIT_CARD", card()).t(".\n")
    d.t("Assigned advocate: ").e("PERSON", agent.name()).t(", ").e("PHONE_NUMBER", us_phone())
    return d.record()


def en_chat():
    d = Doc("en")
    a, b = people(person_en, 2)
    h = R.randint(8, 16)
    mins = sorted(R.sample(range(60), 4))
    d.t(f"[{h:02d}:{mins[0]:02d}] agent17: can someone call ").e("PERSON", a.name("lower"))
    d.t(" back? number is ").e("PHONE_NUMBER", us_phone()).t("\n")
    d.t(f"[{h:02d}:{mins[1]:02d}] desk4: on it. their email bounced, try ").e("EMAIL_ADDRESS", a.email(EN_DOMAINS)).t("\n")
    d.t(f"[{h:02d}:{mins[2]:02d}] agent17: also ").e("PERSON", b.name("lower" if R.random() < 0.5 else None))
    d.t(R.choice([" says the card ending was wrong, full number ", " disputed the charge on "]))
    d.e("CREDIT_CARD", card_number()).t("\n")
    d.t(f"[{h:02d}:{mins[3]:02d}] desk4: pls don't paste card numbers in chat, ticket {case_no()} updated")
    return d.record()


def en_travel():
    d = Doc("en")
    p = person_en()
    d.t(f"Travel authorization TA-2026-{R.randint(100, 999)}\n")
    d.t("Traveler: ").e("PERSON", p.name()).t("\n")
    d.t("Passport: ").e("US_PASSPORT", passport()).t(f" (exp. {iso_date(2031)})\n")
    d.t("DOB: ").e("DATE_OF_BIRTH", dob_en()).t("\n")
    d.t("Mobile: ").e("PHONE_NUMBER", us_phone()).t("\n")
    d.t("Government travel card: ").e("CREDIT_CARD", card()).t("\n")
    if R.random() < 0.6:
        c = R.choice(["DE", "ES", "BE", "IT", "FR"])
        d.t(f"Per diem advance (EUR {R.randint(200, 900)}) wired to IBAN ").e("IBAN_CODE", iban(c)).t("\n")
    d.t(f"Destination: {R.choice(['Brussels', 'Madrid', 'Rome', 'Frankfurt', 'Geneva'])}; "
        f"flight {R.choice(['UA', 'DL', 'AA'])} {R.randint(100, 999)}; conference fee ${R.randint(300, 900)}.")
    return d.record()


def en_wire():
    d = Doc("en")
    p, officer = people(person_en, 2)
    d.t(R.choice(["Payment exception report: ", "Treasury offset notice - ", "Vendor refund: "]))
    d.t("beneficiary ").e("PERSON", p.name()).t(", IBAN ").e("IBAN_CODE", iban(R.choice(["DE", "ES", "BE", "IT", "FR"])))
    d.t(f", amount EUR {R.randint(1, 99)},{R.randint(100, 999)}.{R.randint(10, 99)}. ")
    d.t("Contact ").e("EMAIL_ADDRESS", p.email(EN_DOMAINS)).t(" or ").e("PHONE_NUMBER", us_phone()).t(". ")
    d.t("Reviewed by ").e("PERSON", officer.name()).t(f" on {iso_date()}; reference PX-{R.randint(100000, 999999)}.")
    return d.record()


def en_memo_secret():
    d = Doc("en")
    author = person_en()
    mark = R.choice(MARKINGS_EN)
    d.e("CLASSIFICATION_MARKING", mark).t("\n")
    d.t(f"MEMORANDUM FOR: Chief Information Security Officer\nFROM: ").e("PERSON", author.name()).t("\n")
    d.t("SUBJECT: Exposure of service credentials\n\n")
    d.t("(").e("CLASSIFICATION_MARKING", "U//FOUO").t(") On ").t(iso_date()).t(" a contractor laptop at ")
    d.e("IP_ADDRESS", ipv4()).t(" synchronized a configuration file containing ")
    k, s = secret(allow_pem=False)
    d.e("SECRET", s).t(".\n")
    d.t("(").e("CLASSIFICATION_MARKING", "U//FOUO").t(f") The key was disabled within {R.randint(5, 55)} minutes. "
                                                    f"No further action is required under NIST SP 800-61 Rev. 2.\n")
    d.e("CLASSIFICATION_MARKING", mark)
    return d.record()


# ---------------------------------------------------------------------------
# French documents
# ---------------------------------------------------------------------------

def fr_courriel_dossier():
    d = Doc("fr")
    usager, agent = people(person_fr, 2)
    mark = "DIFFUSION RESTREINTE" if R.random() < 0.3 else None
    if mark:
        d.e("CLASSIFICATION_MARKING", mark).t("\n\n")
    d.t("De : ").e("PERSON", agent.name("plain")).t(" <").e("EMAIL_ADDRESS", agent.email(["agents.interieur.example.fr", "caf.example.fr"], plus=False)).t(">\n")
    d.t("À : accueil-usagers@caf.example.fr\n")
    d.t(f"Objet : Dossier n° {case_no()} – {R.choice(['RSA', 'aide au logement', 'prime d’activité', 'titre de séjour'])}\n\n")
    d.t("Bonjour,\n\n")
    d.t(R.choice(["J'ai reçu ce matin ", "Nous avons eu au téléphone ", "Passage à l'accueil ce jour : "])).e("PERSON", usager.name())
    ymd = birth()
    opening = R.choice([f", né{usager.e} le ", ", né(e) le ", " (date de naissance : ", f", né{usager.e} à Morlaix le "])
    d.t(opening).e("DATE_OF_BIRTH", dob_fr(ymd))
    d.t("), " if opening.startswith(" (") else ", ")
    d.t(R.choice(["numéro de sécurité sociale ", "NIR ", "n° INSEE "]))
    d.e("FR_NIR", nir("2" if usager.female else "1", ymd[0], ymd[1])).t(". ")
    d.t(R.choice(["Nouvelle adresse : ", "La personne a déménagé au ", "Adresse déclarée : "]))
    d.e("STREET_ADDRESS", fr_street())
    if R.random() < 0.4:
        d.t(", " + R.choice(["bât. C", "appt 12", "3e étage", "résidence Les Mouettes"]))
    d.t(", " + fr_city_line() + ". ")
    d.t("Téléphone : ").e("PHONE_NUMBER", fr_phone()).t(" ; courriel : ").e("EMAIL_ADDRESS", usager.email(FR_DOMAINS)).t(".\n")
    d.t(f"Le montant de l'indu s'élève à {R.randint(100, 4000)},{R.randint(0, 99):02d} € "
        f"(article L. {R.randint(100, 900)}-{R.randint(1, 9)} du code de la sécurité sociale).\n\n")
    d.t(R.choice(["Cordialement,\n", "Bien cordialement,\n", "Bonne journée,\n"])).e("PERSON", agent.name("plain"))
    d.t("\n" + R.choice(["Conseillère, CAF du Finistère", "Gestionnaire, préfecture d'Ille-et-Vilaine",
                         "Agent d'accueil, CPAM du Rhône"]))
    if mark:
        d.t("\n\n").e("CLASSIFICATION_MARKING", mark)
    return d.record()


def fr_formulaire():
    d = Doc("fr")
    p = person_fr()
    table = R.random() < 0.4
    d.t(R.choice(["DEMANDE D'AIDE PERSONNALISÉE AU LOGEMENT – volet 1\n",
                  "Formulaire de demande de revenu de solidarité active\n",
                  "Dossier de demande de bourse sur critères sociaux\n"]))
    sep = " | " if table else "\n"
    d.t(R.choice(["Nom et prénom : ", "Nom, prénom : ", "Demandeur : "])).e("PERSON", p.name()).t(sep)
    ymd = birth()
    d.t(R.choice(["Date de naissance : ", "Né(e) le : ", "date de naissance : "])).e("DATE_OF_BIRTH", dob_fr(ymd)).t(sep)
    d.t(R.choice(["N° de sécurité sociale : ", "NIR : ", "Numéro d'inscription au répertoire : "]))
    d.e("FR_NIR", nir("2" if p.female else "1", ymd[0], ymd[1])).t("\n")
    d.t("Adresse : ").e("STREET_ADDRESS", fr_street())
    if R.random() < 0.3:
        d.t(", " + R.choice(["appt 4", "bâtiment B", "porte 12"]))
    d.t(", " + fr_city_line() + "\n")
    d.t(R.choice(["Tél. : ", "Téléphone portable : ", "Tél : "])).e("PHONE_NUMBER", fr_phone()).t(sep)
    d.t("Courriel : ").e("EMAIL_ADDRESS", p.email(FR_DOMAINS)).t("\n")
    if R.random() < 0.75:
        d.t("IBAN : ").e("IBAN_CODE", iban("FR" if R.random() < 0.7 else R.choice(["BE", "ES", "IT", "DE"])))
        d.t(f"   BIC : {R.choice(['AGRIFRPP', 'CCBPFRPP', 'SOGEFRPP', 'PSSTFRPP'])}{R.choice(['', '829', 'XXX'])}\n")
    d.t(f"Ressources déclarées : {R.randint(1, 30)} {R.randint(100, 999)} € ; "
        f"nombre de parts : {R.choice(['1', '1,5', '2', '2,5', '3'])} ; dossier reçu le {iso_date()}.")
    return d.record()


def fr_ticket():
    d = Doc("fr")
    a, b = people(person_fr, 2)
    if R.random() < 0.6:
        d.t("[").e("CLASSIFICATION_MARKING", R.choice(MARKINGS_FR)).t("] ")
    d.t(f"Ticket INC-2026-{R.randint(1000, 9999)} : {R.choice(['fuite de jeton dans un dépôt', 'connexions suspectes sur le portail agents', 'clé privée publiée sur le wiki'])}\n")
    d.t("Déclarant : ").e("PERSON", a.name()).t(" – ").e("EMAIL_ADDRESS", a.email(["agents.interieur.example.fr", "dsi.example.fr"], plus=False)).t("\n")
    d.t("Extrait du journal :\n")
    for _ in range(R.randint(1, 3)):
        ts = f"{iso_date()} {R.randint(0, 23):02d}:{R.randint(0, 59):02d}:{R.randint(0, 59):02d}"
        if R.random() < 0.5:
            d.t(f"{ts} nginx: ").e("IP_ADDRESS", ipv4()).t(f" \"POST /connexion HTTP/2\" {R.choice([401, 403, 429])} – tentative n° {R.randint(2, 40)}\n")
        else:
            d.t(f"{ts} pare-feu : DROP src=").e("IP_ADDRESS", ipv4()).t(" dst=").e("IP_ADDRESS", ipv4())
            d.t(f" dpt={R.choice([22, 443, 3389, 5432])}\n")
    kind, sec = secret()
    if kind == "pem":
        d.t("Contenu publié :\n").e("SECRET", sec).t("\n")
    elif kind == "jwt":
        d.t("Jeton de session copié dans le ticket : ").e("SECRET", sec).t("\n")
    else:
        d.t(R.choice(["Clé exposée : ", "Jeton trouvé dans le fichier de configuration : "])).e("SECRET", sec).t("\n")
    d.t("Prise en charge : ").e("PERSON", b.name()).t(", joignable au ").e("PHONE_NUMBER", fr_phone())
    d.t(f". Clé révoquée ; mise à jour de l'application en version {R.randint(1, 5)}.{R.randint(0, 20)}.{R.randint(0, 9)}.")
    return d.record()


def fr_courrier_rh():
    d = Doc("fr")
    sal, drh = people(person_fr, 2)
    d.t(f"{R.choice(['Brest', 'Rennes', 'Lyon', 'Dijon'])}, le {R.randint(2, 28)} {R.choice(MONTHS_FR)} 2026\n\n")
    d.e("PERSON", sal.name()).t("\n").e("STREET_ADDRESS", fr_street()).t("\n" + fr_city_line() + "\n\n")
    d.t("Objet : attestation employeur\n\n")
    d.t("Madame, Monsieur,\n\n")
    d.t(f"Nous certifions que ").e("PERSON", sal.name()).t(", ")
    ymd = birth()
    d.t(f"né{sal.e} le ").e("DATE_OF_BIRTH", dob_fr(ymd))
    d.t(R.choice([" à Quimper", " à Saint-Brieuc", " à Lyon 3e", ""]))
    d.t(f", immatriculé{sal.e} sous le numéro ").e("FR_NIR", nir("2" if sal.female else "1", ymd[0], ymd[1]))
    d.t(f", est employé{sal.e} en qualité d'{R.choice(['attaché d’administration', 'adjoint administratif', 'ingénieur des systèmes d’information'])} "
        f"depuis le {R.randint(1, 28)} {R.choice(MONTHS_FR)} {R.randint(2005, 2024)}. ")
    d.t("Son traitement est versé sur le compte ").e("IBAN_CODE", iban("FR")).t(".\n")
    d.t(f"Établissement employeur : SIRET ").e("FR_SIRET", siret()).t(".\n\n")
    d.t("Veuillez agréer, Madame, Monsieur, l'expression de nos salutations distinguées.\n\n")
    d.e("PERSON", drh.name("plain")).t("\n" + ("Directrice" if drh.female else "Directeur") + " des ressources humaines\n").e("PHONE_NUMBER", fr_phone())
    return d.record()


def fr_compte_rendu():
    d = Doc("fr")
    ps = people(person_fr, 5)
    mark = R.choice(MARKINGS_FR)
    if R.random() < 0.5:
        d.e("CLASSIFICATION_MARKING", mark).t("\n")
    else:
        d.t("[").e("CLASSIFICATION_MARKING", mark).t("]\n")
    d.t(f"Compte rendu de la réunion du comité de pilotage du {R.randint(1, 28)} {R.choice(MONTHS_FR)} 2026\n")
    d.t("Présents : ")
    for i, p in enumerate(ps[:3]):
        if i:
            d.t(" ; ")
        d.e("PERSON", p.name())
        if R.random() < 0.5:
            d.t(f" ({R.choice(['DDETS', 'DINUM', 'préfecture', 'CNAF', 'DGFiP'])})")
    d.t("\nExcusé(e) : ").e("PERSON", ps[3].name()).t("\n")
    d.t("1. ").e("PERSON", ps[0].name("plain")).t(" présente le bilan : ")
    d.t(f"{R.randint(100, 9000)} dossiers traités, taux de rejet de {R.randint(1, 30)},{R.randint(0, 9)} %.\n")
    d.t("2. Incident du ").t(iso_date()).t(" : des requêtes anormales provenant de ").e("IP_ADDRESS", ipv4())
    d.t(" ont été bloquées.\n")
    d.t("3. Relevé de décision : ").e("PERSON", ps[1].name("plain")).t(" recontactera " + ("l'usagère " if ps[4].female else "l'usager ")).e("PERSON", ps[4].name())
    d.t(" au ").e("PHONE_NUMBER", fr_phone()).t(" avant la fin du mois.\n")
    d.t(f"Prochaine réunion : {R.randint(1, 28)}/{R.randint(1, 12):02d}/2026, salle {R.randint(100, 499)}.")
    return d.record()


def fr_registre_cada():
    d = Doc("fr")
    d.t(f"Registre des demandes de communication de documents administratifs – {R.choice(MONTHS_FR)} 2026\n")
    d.t("N° | Demandeur | Contact | Reçue le | Suite donnée\n")
    for p in people(person_fr, R.randint(3, 5)):
        d.t(f"CADA-{R.randint(2025, 2026)}-{R.randint(1, 999):04d} | ").e("PERSON", p.name()).t(" | ")
        r = R.random()
        if r < 0.5:
            d.e("EMAIL_ADDRESS", p.email(FR_DOMAINS, plus=R.random() < 0.4))
        elif r < 0.8:
            d.e("PHONE_NUMBER", fr_phone())
        else:
            d.e("STREET_ADDRESS", fr_street()).t(", " + fr_city_line())
        d.t(f" | {R.randint(1, 28):02d}/{R.randint(1, 12):02d}/2026 | "
            f"{R.choice(['communiqué', 'refus (art. L. 311-6 CRPA)', 'saisine CADA', 'en cours'])}\n")
    d.t(f"Délai moyen de réponse : {R.randint(10, 60)} jours.")
    return d.record()


def fr_export_csv():
    d = Doc("fr")
    cols = R.choice([["nom", "date_naissance", "nir", "telephone", "courriel"],
                     ["nom_prenom", "iban", "telephone"],
                     ["raison_sociale", "siren", "siret", "contact"],
                     ["nom", "adresse", "courriel", "nir"]])
    d.t(";".join(cols) + "\n")
    for p in people(person_fr, R.randint(3, 5)):
        for i, c in enumerate(cols):
            if c == "siret":
                continue  # written together with the SIREN of the same row
            if i:
                d.t(";")
            if c in ("nom", "nom_prenom", "contact"):
                d.e("PERSON", p.name())
            elif c == "date_naissance":
                y, m, dd = birth()
                d.e("DATE_OF_BIRTH", R.choice([f"{dd:02d}/{m:02d}/{y}", f"{y}-{m:02d}-{dd:02d}"]))
            elif c == "nir":
                d.e("FR_NIR", nir("2" if p.female else "1"))
            elif c == "telephone":
                d.e("PHONE_NUMBER", fr_phone())
            elif c == "courriel":
                d.e("EMAIL_ADDRESS", p.email(FR_DOMAINS))
            elif c == "iban":
                d.e("IBAN_CODE", iban(R.choice(["FR", "FR", "BE", "ES", "IT", "DE"])))
            elif c == "adresse":
                d.t('"').e("STREET_ADDRESS", fr_street()).t(", " + fr_city_line() + '"')
            elif c == "raison_sociale":
                d.t(R.choice(["SARL Ty Breizh", "SAS Atelier Vauban", "EURL Boulangerie du Port",
                              "SCOP Les Menuisiers", "SA Transports Caradec"]))
            elif c == "siren":
                raw = siren_raw()
                d.e("FR_SIREN", siren(raw))
                d.t(";").e("FR_SIRET", siret(raw))
        d.t("\n")
    d.t(f"# export du {iso_date()} – encodage UTF-8 – séparateur ;")
    return d.record()


def fr_entreprise():
    d = Doc("fr")
    gerant, acheteur = people(person_fr, 2)
    raw = siren_raw()
    d.t(R.choice(["Fiche fournisseur", "Marché public – pièce administrative", "Demande de subvention – association"]))
    d.t(f" (réf. {R.randint(2025, 2026)}-AO-{R.randint(1, 999):04d})\n")
    d.t(f"Raison sociale : {R.choice(['Atelier Morvan SARL', 'Les Jardins de Kerléo', 'Transports du Léon', 'Imprimerie Saint-Amand'])}\n")
    d.t("SIREN : ").e("FR_SIREN", siren(raw)).t("\n")
    d.t("SIRET du siège : ").e("FR_SIRET", siret(raw)).t("\n")
    if R.random() < 0.5:
        d.t("SIRET de l'établissement secondaire : ").e("FR_SIRET", siret(raw)).t("\n")
    d.t("Siège : ").e("STREET_ADDRESS", fr_street()).t(", " + fr_city_line() + "\n")
    d.t("Représentant légal : ").e("PERSON", gerant.name()).t(", ")
    d.t(R.choice(["gérant", "président", "présidente de l'association"])).t(" – ").e("PHONE_NUMBER", fr_phone()).t("\n")
    d.t("Coordonnées bancaires : ").e("IBAN_CODE", iban("FR")).t("\n")
    d.t(f"Code APE {R.randint(10, 96)}.{R.randint(10, 99)}Z ; capital social {R.randint(1, 500)} 000 € ; "
        f"TVA intracommunautaire sur demande.\n")
    d.t("Acheteur public : ").e("PERSON", acheteur.name("plain")).t(", ").e("EMAIL_ADDRESS", acheteur.email(["marches.example.gouv.fr", "mairie-brest.example.fr"], plus=False))
    return d.record()


def fr_chat():
    d = Doc("fr")
    a, b = people(person_fr, 2)
    h = R.randint(8, 17)
    mins = sorted(R.sample(range(60), 4))
    d.t(f"[{h}h{mins[0]:02d}] accueil2 : quelqu'un peut rappeler ").e("PERSON", a.name("lower"))
    d.t(" ? son numéro : ").e("PHONE_NUMBER", fr_phone()).t("\n")
    d.t(f"[{h}h{mins[1]:02d}] instructeur5 : ok, son adresse mail c'est ").e("EMAIL_ADDRESS", a.email(FR_DOMAINS)).t("\n")
    d.t(f"[{h}h{mins[2]:02d}] accueil2 : et ").e("PERSON", b.name("lower" if R.random() < 0.5 else "plain"))
    d.t(" demande l'opposition sur sa carte ").e("CREDIT_CARD", card()).t("\n")
    d.t(f"[{h}h{mins[3]:02d}] instructeur5 : merci de ne pas copier de numéros de carte ici, voir la note n° {R.randint(10, 99)}-{R.randint(100, 999)}")
    return d.record()


def fr_carte_litige():
    d = Doc("fr")
    p = person_fr()
    d.t(f"Réclamation n° {R.randint(100000, 999999)} – régie de recettes\n")
    d.e("PERSON", p.name()).t(R.choice([" conteste un prélèvement de ", " signale un double débit de "]))
    d.t(f"{R.randint(10, 500)},{R.randint(0, 99):02d} € sur la carte ").e("CREDIT_CARD", card()).t(". ")
    d.t("Remboursement demandé sur ").e("IBAN_CODE", iban(R.choice(["FR", "BE", "IT", "ES", "DE"]))).t(". ")
    d.t("Rappeler au ").e("PHONE_NUMBER", fr_phone()).t(" ou écrire à ").e("EMAIL_ADDRESS", p.email(FR_DOMAINS)).t(".")
    return d.record()


def fr_note_secret():
    d = Doc("fr")
    auteur = person_fr()
    mark = R.choice(MARKINGS_FR)
    d.e("CLASSIFICATION_MARKING", mark).t("\n")
    d.t("NOTE à l'attention du fonctionnaire de sécurité des systèmes d'information\nRédacteur : ").e("PERSON", auteur.name()).t("\n\n")
    d.t("Le ").t(iso_date()).t(", le poste ").e("IP_ADDRESS", ipv4()).t(" a transmis à un service en ligne un fichier contenant ")
    k, s = secret(allow_pem=R.random() < 0.4)
    if k == "pem":
        d.t("la clé suivante :\n").e("SECRET", s).t("\n")
    else:
        d.t("le jeton ").e("SECRET", s).t(".\n")
    d.t(f"Le jeton a été révoqué ; une revue est prévue conformément à l'article {R.randint(1, 40)} de l'IGI 1300.\n")
    d.e("CLASSIFICATION_MARKING", mark)
    return d.record()


# ---------------------------------------------------------------------------
# Clean texts (no personal data): traps for false positives
# ---------------------------------------------------------------------------

def bad_luhn_grouped():
    n = luhn_fail(16)
    return " ".join(n[i:i + 4] for i in range(0, 16, 4))


def bad_siren():
    n = luhn_fail(9)
    return f"{n[:3]} {n[3:6]} {n[6:]}"


TRAPS_EN = [
    lambda: f"Order #A-{R.randint(1000, 9999)}-{R.randint(1000, 9999)} shipped on {iso_date()}; total ${R.randint(1, 9)},{R.randint(100, 999)}.{R.randint(10, 99)} including {R.randint(2, 9)}.{R.randint(0, 9)}% sales tax.",
    lambda: f"Case number {case_no()} was reassigned to the Department of Labor regional office in Kansas City on {iso_date()}.",
    lambda: f"Under 5 U.S.C. 552(b)(6) the agency withheld {R.randint(2, 400)} pages; the appeal deadline is {iso_date()}.",
    lambda: f"Release notes for v{R.randint(1, 4)}.{R.randint(0, 20)}.{R.randint(0, 9)}: fixed pagination in the intake queue and raised the upload limit to {R.choice([25, 50, 100])} MB.",
    lambda: "The Secret Service and the Department of Homeland Security will co-host the briefing in Room " + str(R.randint(100, 9999)) + ".",
    lambda: f"Staff should keep draft deliberations confidential until the final rule is published in the Federal Register on {iso_date()}.",
    lambda: f"The distribution center in ZIP code {R.choice(['20530', '10007', '60604', '94103', '98101'])} processed {R.randint(1000, 9000):,} pallets, up {R.randint(1, 30)}.{R.randint(0, 9)}% from last quarter.",
    lambda: f"Replacement filter part no. {R.randint(100, 999)}-{R.randint(1000, 9999)}-{R.randint(10, 99)} fits models A-{R.randint(100, 400)} and A-{R.randint(401, 800)}.",
    lambda: f"Invoice INV-2026-{R.randint(1, 99999):05d} for ${R.randint(1, 99)},{R.randint(100, 999)}.00 is due net 30 under purchase order {R.randint(1000000, 9999999)}.",
    lambda: "The meeting moved from the Main Street building to the Pennsylvania Avenue annex; parking is on Constitution Avenue.",
    lambda: f"Section {R.randint(1, 9)}.{R.randint(1, 9)}.{R.randint(1, 9)} of the handbook explains the appeals process; see also Table {R.randint(1, 9)}-{R.randint(10, 30)}.",
    lambda: f"Washington, Oregon and Idaho reported a combined {R.randint(1, 20)}.{R.randint(0, 9)}% increase in initial claims for the week ending {iso_date()}.",
    lambda: "Our secret to faster processing is simple: fewer handoffs and one shared checklist.",
    lambda: f"Error 0x{R.randint(0x10000000, 0x8fffffff):08X} at {R.randint(0, 23):02d}:{R.randint(0, 59):02d}:{R.randint(0, 59):02d}; retry {R.randint(1, 4)} of 5 succeeded.",
    lambda: f"Docket No. {R.randint(20, 26)}-{R.randint(1000, 9999)} was argued on {iso_date()} before the Court of Appeals for the Federal Circuit.",
    lambda: f"Ticket INC{R.randint(1000000, 9999999)} closed: root cause was an expired TLS certificate on the staging cluster.",
    lambda: "The Form I-9 and SF-86 instructions were updated in revision 03/2025; older editions are no longer accepted.",
    lambda: "Classified ads for surplus office furniture run every Tuesday in the agency newsletter.",
    lambda: f"The Social Security Administration will announce a cost-of-living adjustment of {R.randint(1, 4)}.{R.randint(0, 9)}% in October.",
    lambda: f"Version {R.randint(8, 12)}.{R.randint(0, 9)} of the records schedule supersedes version {R.randint(5, 7)}.{R.randint(0, 9)}; {R.randint(100, 999)} public comments were received.",
    lambda: f"Budget line {R.randint(1000, 9999)}-{R.randint(1000, 9999)}-{R.randint(10, 99)} shows ${R.randint(10, 99)},{R.randint(100, 999)} obligated and ${R.randint(1, 9)},{R.randint(100, 999)} unobligated.",
    lambda: f"Tracking number {luhn_fail(16)} shows the package left the sorting facility in Memphis.",
    lambda: f"Confirmation code {bad_luhn_grouped()} is not a payment card; it identifies the registration batch.",
    lambda: f"Grant award {R.randint(10, 99)}-{R.choice(['CA', 'TX', 'NY'])}-{R.randint(1000, 9999)} funds {R.randint(2, 40)} positions at the Department of Housing and Urban Development.",
    lambda: "Top secret recipes from the cafeteria contest will be shared in the staff bulletin.",
    lambda: f"The routing of mail to Building {R.randint(1, 12)} changes on {iso_date()}; use loading dock {R.randint(1, 6)} after 5 p.m.",
    lambda: f"Headcount: {R.randint(1, 9)},{R.randint(100, 999)} FTEs across {R.randint(5, 40)} field offices; attrition {R.randint(2, 12)}.{R.randint(0, 9)}%.",
    lambda: f"Coordinates {R.randint(30, 45)}.{R.randint(1000, 9999)}, -{R.randint(70, 120)}.{R.randint(1000, 9999)} mark the visitor center entrance.",
    lambda: f"Model number {R.randint(200, 999)}.{R.randint(100, 999)}.{R.randint(10, 99)} of the scanner was recalled by the manufacturer.",
    lambda: "Passwords must be at least 14 characters long and rotated every 365 days, per the agency security policy.",
]

TRAPS_FR = [
    lambda: f"Conformément à l'article L. {R.randint(100, 600)}-{R.randint(1, 9)} du code de l'urbanisme, le dossier n° {case_no()} est réputé complet.",
    lambda: f"Le Ministère de l'Intérieur a publié la circulaire NOR INTA26{R.randint(10000, 99999)}C le {R.randint(1, 28)} {R.choice(MONTHS_FR)} 2026.",
    lambda: f"Montant total : {R.randint(1, 99)} {R.randint(100, 999)},{R.randint(10, 99)} € TTC, dont TVA à 20 % ; acompte de {R.choice([10, 30, 40])} %.",
    lambda: "La rue de Rivoli et le boulevard Haussmann seront fermés à la circulation dimanche matin.",
    lambda: f"La version {R.randint(1, 4)}.{R.randint(0, 20)}.{R.randint(0, 9)} du logiciel de gestion des dossiers a été déployée le {iso_date()}.",
    lambda: "Les membres du jury sont tenus au secret professionnel et les délibérations restent confidentielles.",
    lambda: f"Code postal {R.choice(['75007', '29200', '69003', '33000', '13008'])} ; bureau {R.randint(1, 6)}.{R.randint(10, 40)} ; bâtiment {R.choice('ABCD')}.",
    lambda: f"Référence produit 06-{R.randint(1000, 9999)}-{R.randint(1000, 9999)} : ne pas confondre avec la référence 07-{R.randint(1000, 9999)}-{R.randint(1000, 9999)}.",
    lambda: (lambda y: f"Décret n° {y}-{R.randint(100, 1999)} du {R.randint(1, 28)} {R.choice(MONTHS_FR)} {y} relatif à la dématérialisation des procédures.")(R.randint(2010, 2025)),
    lambda: f"La préfecture de la Gironde a traité {R.randint(1, 9)} {R.randint(100, 999)} demandes de titres de séjour en 2025, soit +{R.randint(1, 15)},{R.randint(0, 9)} %.",
    lambda: "Le taux de TVA réduit est de 5,5 % et le taux normal de 20 %.",
    lambda: f"Marché public n° 2026-AO-{R.randint(1, 999):04d}, lot {R.randint(1, 6)} ; date limite de remise des offres : {R.randint(1, 28):02d}/{R.randint(1, 12):02d}/2026 à 12 h 00.",
    lambda: "La diffusion de ce rapport est limitée aux membres de la commission des finances.",
    lambda: "L'Agence nationale de la sécurité des systèmes d'information recommande des mots de passe d'au moins douze caractères.",
    lambda: f"Séance du conseil municipal : {R.randint(10, 40)} voix pour, {R.randint(0, 9)} contre, {R.randint(2, 5)} abstentions.",
    lambda: "Le secret des affaires est protégé par la loi n° 2018-670 du 30 juillet 2018.",
    lambda: "La Caisse d'allocations familiales de la Loire verse l'aide au logement le 5 de chaque mois.",
    lambda: f"Évolution des effectifs 2019-2025 (en ETP) : 1 {R.randint(100, 299)} ; 1 {R.randint(100, 299)} ; 1 {R.randint(100, 299)}.",
    lambda: f"Le dossier CADA n° 2026{R.randint(1000, 9999)} a reçu un avis favorable à la communication.",
    lambda: f"Article R. {R.randint(300, 350)}-{R.randint(1, 9)}-{R.randint(1, 3)} du code des relations entre le public et l'administration.",
    lambda: f"Commande n° CMD-{R.randint(1000000, 9999999)} livrée à l'entrepôt de Saint-Denis le {iso_date()}.",
    lambda: f"Le centre des finances publiques de Lyon est ouvert de 8 h 30 à 12 h 00, bureau {R.randint(100, 300)}.",
    lambda: f"Ticket INC-2026-{R.randint(1000, 9999)} : redémarrage du serveur applicatif après la mise à jour {R.randint(1, 5)}.{R.randint(0, 9)}.{R.randint(0, 9)}.",
    lambda: f"Indice de référence des loyers : {R.randint(130, 150)},{R.randint(10, 99)} au troisième trimestre, soit +{R.randint(1, 4)},{R.randint(10, 99)} % sur un an.",
    lambda: f"Le Conseil d'État a rendu sa décision n° {R.randint(400000, 499999)} le {R.randint(1, 28)} {R.choice(MONTHS_FR)} 2026.",
    lambda: f"Numéro de dossier interne {bad_siren()} : à ne pas confondre avec un identifiant d'entreprise.",
    lambda: "Le Service de santé des armées et la Direction générale de la gendarmerie nationale ont signé une convention.",
    lambda: f"Le budget prévoit {R.randint(1, 9)},{R.randint(1, 9)} millions d'euros pour la rénovation de la place de la Comédie.",
    lambda: f"Le tribunal administratif de Rennes a enregistré la requête n° {R.randint(2000000, 2699999)} le {iso_date()}.",
    lambda: "Ce document est public ; il peut être librement réutilisé sous licence ouverte, version 2.0.",
]


def clean_text(lang):
    pool = TRAPS_EN if lang == "en" else TRAPS_FR
    k = R.choice([1, 2, 2, 3])
    picks = R.sample(range(len(pool)), k)
    return {"language": lang, "text": " ".join(pool[i]() for i in picks), "entities": []}


# ---------------------------------------------------------------------------
# Assembly and verification
# ---------------------------------------------------------------------------

EN_GENERATORS = [(en_casework_email, 18), (en_benefit_form, 18), (en_it_ticket, 16),
                 (en_hr_letter, 16), (en_minutes, 10), (en_foia_log, 10), (en_csv, 12),
                 (en_tax_case, 20), (en_chat, 8), (en_travel, 20), (en_wire, 6),
                 (en_memo_secret, 8)]
FR_GENERATORS = [(fr_courriel_dossier, 18), (fr_formulaire, 16), (fr_ticket, 16),
                 (fr_courrier_rh, 12), (fr_compte_rendu, 10), (fr_registre_cada, 10),
                 (fr_export_csv, 14), (fr_entreprise, 22), (fr_chat, 8), (fr_carte_litige, 10),
                 (fr_note_secret, 8)]
CLEAN_PER_LANGUAGE = 32


def _digits(s):
    return "".join(c for c in s if c.isdigit())


def check_value(kind, value):
    """Re-checks every labelled identifier against its validity rule."""
    if kind == "CREDIT_CARD":
        n = _digits(value)
        assert len(n) in (15, 16) and luhn_ok(n), value
    elif kind == "IBAN_CODE":
        raw = value.replace(" ", "")
        assert len(raw) == {"FR": 27, "DE": 22, "ES": 24, "BE": 16, "IT": 27}[raw[:2]] and iban_ok(raw), value
    elif kind == "US_SSN":
        n = _digits(value)
        assert len(n) == 9 and n[:3] not in ("000", "666") and n[0] != "9", value
        assert n[3:5] != "00" and n[5:] != "0000", value
    elif kind == "US_ITIN":
        n = _digits(value)
        assert len(n) == 9 and n[0] == "9" and int(n[3:5]) in ITIN_GROUPS, value
    elif kind == "US_EIN":
        n = _digits(value)
        assert len(n) == 9 and n[:2] in EIN_PREFIXES, value
    elif kind == "US_BANK_ROUTING":
        assert aba_ok(value), value
    elif kind == "FR_NIR":
        raw = value.replace(" ", "")
        assert len(raw) == 15 and raw[0] in "12" and 1 <= int(raw[3:5]) <= 12 and nir_ok(raw), value
    elif kind == "FR_SIREN":
        n = value.replace(" ", "")
        assert len(n) == 9 and n.isdigit() and luhn_ok(n), value
    elif kind == "FR_SIRET":
        n = value.replace(" ", "")
        assert len(n) == 14 and n.isdigit() and luhn_ok(n) and luhn_ok(n[:9]), value
    elif kind == "IP_ADDRESS":
        parts = value.split(".")
        assert len(parts) == 4 and all(0 <= int(p) <= 255 for p in parts), value
    elif kind == "EMAIL_ADDRESS":
        local, _, domain = value.partition("@")
        assert local and "." in domain and " " not in value, value
    elif kind == "US_PASSPORT":
        assert len(value) == 9 and value[1:].isdigit(), value
    elif kind == "SECRET":
        assert value.startswith(("AKIA", "ghp_", "xoxb-", "eyJ", "-----BEGIN ")), value
        if value.startswith("-----BEGIN "):
            assert value.rstrip().endswith("-----") and "-----END " in value, value


def verify(records):
    for rec in records:
        text = rec["text"]
        assert rec["language"] in ("en", "fr")
        last_end = 0
        for ent in sorted(rec["entities"], key=lambda e: e["start"]):
            start, end = ent["start"], ent["end"]
            assert 0 <= start < end <= len(text), ent
            value = text[start:end]
            assert value and value == value.strip(), (value, text)
            assert start >= last_end, ("overlap", rec)
            last_end = end
            # The span must not cut a word in two.
            if start > 0:
                assert not text[start - 1].isalnum(), (value, text[start - 5:end])
            if end < len(text):
                assert not text[end].isalnum(), (value, text[start:end + 5])
            check_value(ent["type"], value)


def main():
    records = []
    for lang, generators in (("en", EN_GENERATORS), ("fr", FR_GENERATORS)):
        for gen, count in generators:
            for _ in range(count):
                records.append(gen())
        for _ in range(CLEAN_PER_LANGUAGE):
            records.append(clean_text(lang))
    R.shuffle(records)
    for rec in records:
        rec["entities"].sort(key=lambda e: e["start"])

    verify(records)

    per_type = Counter()
    per_type_lang = Counter()
    per_lang = Counter()
    clean = Counter()
    for rec in records:
        per_lang[rec["language"]] += 1
        if not rec["entities"]:
            clean[rec["language"]] += 1
        for ent in rec["entities"]:
            per_type[ent["type"]] += 1
            per_type_lang[(ent["type"], rec["language"])] += 1

    expected_types = ["PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE",
                      "IP_ADDRESS", "US_SSN", "US_ITIN", "US_EIN", "US_BANK_ROUTING", "FR_NIR",
                      "FR_SIREN", "FR_SIRET", "STREET_ADDRESS", "DATE_OF_BIRTH", "US_PASSPORT",
                      "SECRET", "CLASSIFICATION_MARKING"]
    assert set(per_type) == set(expected_types), set(per_type) ^ set(expected_types)
    for t in expected_types:
        assert per_type[t] >= 25, (t, per_type[t])
    assert len(records) >= 300 and sum(per_type.values()) >= 1000
    assert sum(clean.values()) >= 40
    assert abs(per_lang["en"] - per_lang["fr"]) <= 0.1 * len(records)

    out = sys.stdout
    for rec in records:
        out.write(json.dumps(rec, ensure_ascii=False) + "\n")

    err = sys.stderr
    err.write(f"texts: {len(records)} (en {per_lang['en']}, fr {per_lang['fr']}); "
              f"clean: {sum(clean.values())} (en {clean['en']}, fr {clean['fr']}); "
              f"entities: {sum(per_type.values())}\n")
    err.write(f"{'type':<24}{'en':>6}{'fr':>6}{'total':>7}\n")
    for t in expected_types:
        err.write(f"{t:<24}{per_type_lang[(t, 'en')]:>6}{per_type_lang[(t, 'fr')]:>6}{per_type[t]:>7}\n")


if __name__ == "__main__":
    main()
