"""Writes the labelled corpus of the detection engine's evaluation.

Synthetic English and French administrative texts (case notes, e-mails,
forms, tickets) with identifiers generated with valid check digits, names
from a list unrelated to the engine's gazetteer as well as from it, and
passages with no personal data at all (numbers, dates, capitalised words)
to count false positives. Deterministic: the same seed writes the same
file. Offsets are in characters.

    python3 tests/protect/make_corpus.py > tests/protect/corpus.jsonl
"""

import json
import random
import sys

R = random.Random(20261129)


def luhn_complete(body):
    digits = [int(c) for c in body]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return body + str((10 - total % 10) % 10)


def card():
    prefix = R.choice(["4", "51", "52", "53", "54", "55", "37", "6011"])
    length = 15 if prefix == "37" else 16
    body = prefix + "".join(R.choice("0123456789") for _ in range(length - len(prefix) - 1))
    number = luhn_complete(body)
    if length == 15:
        return f"{number[:4]} {number[4:10]} {number[10:]}"
    sep = R.choice([" ", "-", ""])
    return sep.join(number[i:i + 4] for i in range(0, 16, 4))


def iban(country="FR"):
    lengths = {"FR": 27, "DE": 22, "ES": 24, "IT": 27, "BE": 16, "NL": 18}
    length = lengths[country]
    if country == "NL":
        bban = "".join(R.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(4)) + "".join(
            R.choice("0123456789") for _ in range(10))
    else:
        bban = "".join(R.choice("0123456789") for _ in range(length - 4))
    rearranged = bban + country + "00"
    numeric = "".join(str(int(c, 36)) for c in rearranged)
    check = 98 - int(numeric) % 97
    raw = f"{country}{check:02d}{bban}"
    return " ".join(raw[i:i + 4] for i in range(0, len(raw), 4)) if R.random() < 0.7 else raw


def ssn():
    while True:
        area = R.randint(1, 899)
        if area != 666:
            break
    return f"{area:03d}-{R.randint(1, 99):02d}-{R.randint(1, 9999):04d}"


def itin():
    group = R.choice(list(range(70, 89)) + list(range(90, 93)) + list(range(94, 100)))
    return f"9{R.randint(0, 99):02d}-{group}-{R.randint(0, 9999):04d}"


def aba():
    while True:
        prefix = R.choice(["01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12", "21", "22", "26", "31"])
        body = prefix + "".join(R.choice("0123456789") for _ in range(6))
        weights = [3, 7, 1, 3, 7, 1, 3, 7]
        total = sum(int(d) * w for d, w in zip(body, weights))
        return body + str((10 - total % 10) % 10)


def us_phone():
    area = R.choice([202, 212, 312, 415, 617, 703, 801, 919])
    exchange = R.randint(200, 999)
    while exchange in (211, 311, 411, 511, 611, 711, 811, 911, 555):
        exchange = R.randint(200, 999)
    line = R.randint(0, 9999)
    return R.choice([f"({area}) {exchange}-{line:04d}", f"{area}-{exchange}-{line:04d}", f"{area}.{exchange}.{line:04d}"])


def fr_phone():
    first = R.choice("1234567")
    rest = [f"{R.randint(0, 99):02d}" for _ in range(4)]
    if R.random() < 0.3:
        return f"+33 {first} " + " ".join(rest)
    return f"0{first} " + " ".join(rest)


def nir():
    sex = R.choice("12")
    year = R.randint(40, 99)
    month = R.randint(1, 12)
    dept = R.choice(["75", "69", "13", "33", "59", "2A", "2B", "44", "31"])
    commune = R.randint(1, 999)
    order = R.randint(1, 999)
    body = f"{sex}{year:02d}{month:02d}{dept}{commune:03d}{order:03d}"
    numeric = body.replace("2A", "19").replace("2B", "18")
    key = 97 - int(numeric) % 97
    full = f"{body}{key:02d}"
    if R.random() < 0.5:
        return f"{full[0]} {full[1:3]} {full[3:5]} {full[5:7]} {full[7:10]} {full[10:13]} {full[13:]}"
    return full


def siren():
    body = "".join(R.choice("0123456789") for _ in range(8))
    number = luhn_complete(body)
    return f"{number[:3]} {number[3:6]} {number[6:]}"


def siret():
    body = "".join(R.choice("0123456789") for _ in range(13))
    number = luhn_complete(body)
    return f"{number[:3]} {number[3:6]} {number[6:9]} {number[9:]}"


def email(first, last, domain):
    return f"{first}.{last}@{domain}".lower().replace(" ", "")


def ipv4():
    return ".".join(str(R.randint(1, 254)) for _ in range(4))


GIVEN_EN = ["Jennifer", "Michael", "Sarah", "David", "Emily", "Robert", "Linda", "James", "Karen", "Thomas"]
FAMILY_EN = ["Johnson", "Williams", "Brown", "Miller", "Davis", "Anderson", "Taylor", "Thompson", "Walker", "Young"]
GIVEN_FR = ["Camille", "Nicolas", "Isabelle", "Julien", "Sophie", "Laurent", "Nathalie", "Thomas", "Claire", "Antoine"]
FAMILY_FR = ["Bernard", "Dubois", "Moreau", "Laurent", "Girard", "Fontaine", "Rousseau", "Mercier", "Chevalier", "Lambert"]
STREETS_EN = ["Maple Street", "Oak Avenue", "Cedar Road", "Washington Blvd", "Lake Drive", "Pine Lane"]
STREETS_FR = ["rue de la Paix", "avenue Victor Hugo", "boulevard Saint-Michel", "rue des Lilas", "place de la République", "allée des Tilleuls"]
CITIES_FR = ["Paris", "Lyon", "Marseille", "Bordeaux", "Lille", "Nantes"]


class Doc:
    def __init__(self, language):
        self.language = language
        self.text = ""
        self.entities = []

    def add(self, text, kind=None):
        start = len(self.text)
        self.text += text
        if kind:
            self.entities.append({"type": kind, "start": start, "end": len(self.text)})
        return self

    def record(self):
        return {"language": self.language, "text": self.text, "entities": self.entities}


def english_case():
    first, last = R.choice(GIVEN_EN), R.choice(FAMILY_EN)
    d = Doc("en")
    d.add(R.choice(["Case note. ", "Intake summary: ", "Re: benefits review. ", ""]))
    d.add("The applicant, ").add(f"{first} {last}", "PERSON").add(", ")
    if R.random() < 0.6:
        d.add("SSN ").add(ssn(), "US_SSN").add(", ")
    d.add("can be reached at ").add(us_phone(), "PHONE_NUMBER")
    d.add(" or ").add(email(first, last, R.choice(["example.gov", "mail.example.org", "agency.example.us"])), "EMAIL_ADDRESS")
    d.add(". ")
    if R.random() < 0.5:
        number = R.randint(10, 9999)
        d.add("Mailing address: ").add(f"{number} {R.choice(STREETS_EN)}", "STREET_ADDRESS").add(". ")
    if R.random() < 0.4:
        d.add("Refund by card ").add(card(), "CREDIT_CARD").add(" was declined; ")
        d.add("routing number ").add(aba(), "US_BANK_ROUTING").add(" on file.")
    if R.random() < 0.3:
        d.add(" Taxpayer ITIN ").add(itin(), "US_ITIN").add(".")
    return d.record()


def french_case():
    first, last = R.choice(GIVEN_FR), R.choice(FAMILY_FR)
    d = Doc("fr")
    d.add(R.choice(["Note de dossier. ", "Objet : réclamation. ", "Compte rendu d'entretien : ", ""]))
    title = R.choice(["M. ", "Mme ", ""])
    if title:
        d.add(title).add(last, "PERSON")
    else:
        d.add("Le demandeur, ").add(f"{first} {last.upper() if R.random() < 0.5 else last}", "PERSON")
    d.add(", numéro de sécurité sociale ").add(nir(), "FR_NIR").add(", ")
    d.add("joignable au ").add(fr_phone(), "PHONE_NUMBER").add(" ou par courriel à ")
    d.add(email(first, last, R.choice(["exemple.fr", "interieur.example.fr", "mairie.example.fr"])), "EMAIL_ADDRESS").add(". ")
    if R.random() < 0.5:
        d.add("Domicile : ").add(f"{R.randint(1, 200)} {R.choice(STREETS_FR)}, {R.randint(10, 95)}000 {R.choice(CITIES_FR)}", "STREET_ADDRESS").add(". ")
    if R.random() < 0.5:
        d.add("Virement sur l'IBAN ").add(iban(R.choice(["FR", "DE", "ES", "BE"])), "IBAN_CODE").add(". ")
    if R.random() < 0.5:
        d.add("La société (SIREN ").add(siren(), "FR_SIREN").add(") ")
        d.add("et son établissement SIRET ").add(siret(), "FR_SIRET").add(" sont concernés.")
    return d.record()


def ticket():
    language = R.choice(["en", "fr"])
    d = Doc(language)
    if language == "en":
        d.add("Incident: the service at ").add(ipv4(), "IP_ADDRESS").add(" logged a key ")
        key = "AKIA" + "".join(R.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16))
        d.add(key, "SECRET").add(". ")
        if R.random() < 0.5:
            d.add("CUI//SP-PRVCY", "CLASSIFICATION_MARKING").add(" applies to the attachment.")
    else:
        d.add("Incident : le serveur ").add(ipv4(), "IP_ADDRESS").add(" a exposé le mot de passe dans ")
        password = "".join(R.choice("abcdefghjkmnpqrstuvwxyzABCDEFGH23456789!") for _ in range(10))
        d.add("DATABASE_URL=").add(f"postgres://app:{password}@db.interne:5432", "URL_CREDENTIALS").add("/dossiers. ")
        if R.random() < 0.5:
            d.add("Document ").add("DIFFUSION RESTREINTE", "CLASSIFICATION_MARKING").add(".")
    return d.record()


CLEAN_EN = [
    "The committee met on Tuesday to review 12 applications; 3 were approved and the next meeting is in room 204 at 2 pm.",
    "Budget line 2026-118 was raised by 4.5 % after the June review, for a total of 1,250,000 dollars.",
    "Version 3.2.1 of the form was published on 04/05/2026; see section 7, paragraph 2.",
    "Grace Period applies to renewals filed before March 31; Public Works will confirm by Friday.",
    "Order 4111 1111 1111 1112 was cancelled and reference 666-12-3456 closed.",
    "The Housing Authority and the Department of Labor share 14 offices in 9 states.",
]
CLEAN_FR = [
    "Le comité s'est réuni mardi pour examiner 12 demandes ; la prochaine séance aura lieu salle 204 à 14 h.",
    "La ligne budgétaire 2026-118 a augmenté de 4,5 % après la revue de juin, soit 1 250 000 euros au total.",
    "La version 3.2.1 du formulaire a été publiée le 04/05/2026 ; voir l'article 7, alinéa 2.",
    "Le Conseil Municipal et la Direction Régionale partagent 14 sites dans 9 départements.",
    "Ce document est confidentiel et secret pour le public jusqu'à la décision.",
    "Référence interne 732 829 321 à rapprocher du bordereau 2026/44.",
]


def main():
    records = []
    for _ in range(70):
        records.append(english_case())
    for _ in range(70):
        records.append(french_case())
    for _ in range(40):
        records.append(ticket())
    for text in CLEAN_EN:
        records.append({"language": "en", "text": text, "entities": []})
    for text in CLEAN_FR:
        records.append({"language": "fr", "text": text, "entities": []})
    R.shuffle(records)
    for record in records:
        sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
    count = sum(len(record["entities"]) for record in records)
    print(f"{len(records)} texts, {count} labelled entities", file=sys.stderr)


if __name__ == "__main__":
    main()
