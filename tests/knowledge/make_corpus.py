"""Writes the synthetic knowledge corpus and its labelled questions.

About 300 documents of made-up agency material (grant programme notices,
calls for tenders, regional office sheets, regulation summaries), about
60 % in English and 40 % in French, as Markdown or plain text. Documents of
one kind share their structure and most of their wording; what tells them
apart is a code or a name and the facts drawn for each of them (deadlines,
amounts, extensions, addresses, thresholds), which is what makes retrieval
over them hard. Several programmes and tenders share a theme and a town and
differ only by their code, year and figures.

Also writes questions.jsonl next to the documents: 60 questions (36 in
English, 24 in French), each about one fact of one document named by its
code or name in the question, and 6 unanswerable questions about codes that
no document has. Every evidence string is checked to occur exactly once in
the whole corpus, in the document the question names, before anything is
written. Standard library only; the fixed seed makes every run write the
same bytes.

    python3 tests/knowledge/make_corpus.py OUTPUT_DIR
"""

import datetime
import json
import pathlib
import random
import sys
import unicodedata

SEED = 20250611
R = random.Random(SEED)

COUNTS = {
    # kind: (English documents, French documents)
    "grant": (54, 36),
    "tender": (50, 34),
    "office": (36, 24),
    "regulation": (40, 26),
}
QUESTIONS_PER_KIND = {"en": 9, "fr": 6}
UNANSWERABLE_PER_LANG = 3

MONTHS = {
    "en": ["January", "February", "March", "April", "May", "June", "July",
           "August", "September", "October", "November", "December"],
    "fr": ["janvier", "février", "mars", "avril", "mai", "juin", "juillet",
           "août", "septembre", "octobre", "novembre", "décembre"],
}


# ---------------------------------------------------------------- helpers

class Unique:
    """Draws values that have not been drawn before for the same kind."""

    def __init__(self):
        self.used = {}

    def draw(self, kind, make):
        used = self.used.setdefault(kind, set())
        for _ in range(10000):
            value = make()
            if value not in used:
                used.add(value)
                return value
        raise RuntimeError(f"ran out of distinct values for {kind}")


U = Unique()


def money(amount, lang):
    text = f"{amount:,}"
    if lang == "en":
        return "EUR " + text
    return text.replace(",", " ") + " euros"


def number(n, lang):
    text = f"{n:,}"
    return text if lang == "en" else text.replace(",", " ")


def date_text(day, lang):
    if lang == "en":
        return f"{day.day} {MONTHS['en'][day.month - 1]} {day.year}"
    first = "1er" if day.day == 1 else str(day.day)
    return f"{first} {MONTHS['fr'][day.month - 1]} {day.year}"


def working_day(start, span):
    day = start + datetime.timedelta(days=R.randrange(span))
    while day.weekday() >= 5:
        day += datetime.timedelta(days=1)
    return day


def unique_day(kind, start, span):
    return U.draw(kind, lambda: working_day(start, span))


def shift(day, low, high):
    result = day + datetime.timedelta(days=R.randint(low, high))
    while result.weekday() >= 5:
        result += datetime.timedelta(days=1)
    return result


def extension():
    return U.draw("extension", lambda: R.randint(1000, 9899))


def slug(text):
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return plain.lower().replace(" ", "-").replace("'", "")


def contract_a(phrase):
    """French "à" followed by a phrase, contracted with its article."""
    if phrase.startswith("les "):
        return "aux " + phrase[len("les "):]
    if phrase.startswith("le "):
        return "au " + phrase[len("le "):]
    return "à " + phrase


def pick(options):
    return R.choice(options)


class Fact:
    def __init__(self, key, answer, evidence, questions):
        self.key = key
        self.answer = answer
        self.evidence = evidence if isinstance(evidence, list) else [evidence]
        self.questions = questions


class Doc:
    def __init__(self, kind, lang, code, name, title):
        self.kind = kind
        self.lang = lang
        self.code = code
        self.name = name
        self.title = title
        self.town = None
        self.meta = []
        self.sections = []
        self.facts = []
        self.text = None

    def section(self, heading, *blocks):
        self.sections.append((heading, list(blocks)))


def render_markdown(doc):
    lines = [f"# {doc.title}", ""]
    colon = ": " if doc.lang == "en" else " : "
    for label, value in doc.meta:
        lines.append(f"- {label}{colon}{value}")
    lines.append("")
    for heading, blocks in doc.sections:
        lines += [f"## {heading}", ""]
        for block in blocks:
            if block[0] == "p":
                lines += [block[1], ""]
            elif block[0] == "ul":
                lines += [f"- {item}" for item in block[1]] + [""]
            elif block[0] == "table":
                header, rows = block[1], block[2]
                lines.append("| " + " | ".join(header) + " |")
                lines.append("|" + "---|" * len(header))
                lines += ["| " + " | ".join(row) + " |" for row in rows]
                lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def render_text(doc):
    lines = [doc.title, "=" * len(doc.title), ""]
    colon = ": " if doc.lang == "en" else " : "
    for label, value in doc.meta:
        lines.append(f"{label}{colon}{value}")
    lines.append("")
    for number_, (heading, blocks) in enumerate(doc.sections, start=1):
        title = f"{number_}. {heading}"
        lines += [title, "-" * len(title), ""]
        for block in blocks:
            if block[0] == "p":
                lines += [block[1], ""]
            elif block[0] == "ul":
                lines += [f"  * {item}" for item in block[1]] + [""]
            elif block[0] == "table":
                header, rows = block[1], block[2]
                for row in rows:
                    pairs = ", ".join(f"{h}{colon}{c}" for h, c in zip(header[1:], row[1:]))
                    lines.append(f"  * {row[0]} ({pairs})")
                lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


# ---------------------------------------------------------------- vocabulary

TOWNS = {
    "en": [a + b for a in ["Ash", "Oak", "Elm", "Stone", "River", "Clear", "Grey", "Mill",
                           "Fair", "Red", "High", "Green", "Wolf", "Bright", "Cold"]
           for b in ["ford", "vale", "mere", "brook", "field", "haven", "moor", "ridge",
                     "wick", "stead"]],
    "fr": [a + b for a in ["Beau", "Mont", "Val", "Clair", "Roche", "Pierre", "Haute",
                           "Belle", "Grand", "Vieille", "Saint-Aubin-", "Bois"]
           for b in ["fort", "rive", "fontaine", "champ", "lac", "pré", "vallon", "combe",
                     "mare", "brune"]],
}

FIRST_NAMES = {
    "en": ["Martha", "Owen", "Priya", "Gareth", "Helen", "Tobias", "Nadia", "Colin",
           "Ruth", "Samir", "Fiona", "Declan", "Ingrid", "Marcus", "Leona", "Wesley"],
    "fr": ["Camille", "Étienne", "Nadège", "Bastien", "Solène", "Karim", "Agathe",
           "Yannick", "Margaux", "Thibault", "Inès", "Gaëtan", "Roseline", "Mathis"],
}
LAST_NAMES = {
    "en": ["Lindqvist", "Harrow", "Okafor", "Pennington", "Marsh", "Castellan", "Doyle",
           "Whitcombe", "Farrant", "Quayle", "Brightwell", "Ashdown", "Kellaway", "Moreno"],
    "fr": ["Delaunay", "Perrichon", "Mabille", "Rouvière", "Tessier", "Ferrand", "Aubriot",
           "Lemarchal", "Castaing", "Vidalenc", "Brossard", "Quéméner", "Sabatier", "Lhuillier"],
}
STREETS = {
    "en": ["Quarry Lane", "Market Street", "Station Road", "Mill Row", "Church Walk",
           "Harbour Road", "Kings Parade", "Orchard Close", "Bridge Street",
           "Victoria Terrace", "Foundry Lane", "Castle Hill"],
    "fr": ["rue de la Gare", "avenue des Tilleuls", "place du Marché", "rue du Moulin",
           "boulevard Pasteur", "rue des Écoles", "rue Victor-Hugo", "allée des Peupliers",
           "rue de l'Industrie", "place de la Mairie", "chemin des Vignes", "quai des Tanneurs"],
}

DIRECTORATES = {
    "en": ["Directorate for Territorial Development", "Directorate for Social Affairs",
           "Directorate for Economy and Employment", "Directorate for Environment",
           "Directorate for Digital Services", "Directorate for Culture and Heritage"],
    "fr": ["direction du développement territorial", "direction des affaires sociales",
           "direction de l'économie et de l'emploi", "direction de l'environnement",
           "direction des services numériques", "direction de la culture et du patrimoine"],
}

GRANT_THEMES = {
    "en": [
        ("Rural Broadband", "It supports the connection of isolated hamlets and public buildings to very high-speed networks."),
        ("Community Library Modernisation", "It helps local libraries renovate reading rooms and extend their opening hours."),
        ("Youth Employment", "It funds local projects that help people under 26 find a first job or an apprenticeship."),
        ("Energy Renovation of Public Buildings", "It finances insulation, heating and lighting works that cut the energy use of public buildings."),
        ("Local Food Networks", "It supports short supply chains between local farmers, school canteens and markets."),
        ("Accessible Transport", "It funds on-demand transport services for people with reduced mobility."),
        ("Digital Skills for Seniors", "It pays for workshops that help older residents use online public services."),
        ("Heritage Restoration", "It contributes to the repair of listed buildings that remain open to the public."),
        ("Urban Tree Planting", "It finances the planting and care of trees in streets, school yards and car parks."),
        ("Flood Prevention", "It supports works and studies that reduce the exposure of homes to river flooding."),
        ("Cultural Festivals", "It supports free or low-cost festivals organised by local associations."),
        ("Cycling Infrastructure", "It co-finances protected cycle lanes and secure bicycle parking."),
    ],
    "fr": [
        ("Revitalisation des centres-bourgs", "Il soutient la réhabilitation des commerces et des logements vacants en centre-bourg."),
        ("Maisons de santé", "Il finance la création ou l'extension de maisons de santé pluriprofessionnelles."),
        ("Inclusion numérique", "Il accompagne les structures qui aident les habitants à effectuer leurs démarches en ligne."),
        ("Rénovation énergétique des écoles", "Il finance l'isolation et le remplacement des chauffages dans les écoles publiques."),
        ("Circuits courts alimentaires", "Il soutient l'approvisionnement local des cantines scolaires et des marchés."),
        ("Mobilité solidaire", "Il finance des services de transport à la demande pour les personnes sans véhicule."),
        ("Patrimoine rural", "Il contribue à la restauration des lavoirs, chapelles et fours communaux."),
        ("Prévention des inondations", "Il soutient les études et travaux qui réduisent l'exposition des habitations aux crues."),
        ("Vie associative", "Il aide les associations locales à développer des activités ouvertes à tous."),
        ("Emploi des jeunes", "Il finance des projets d'accompagnement vers l'emploi des moins de 26 ans."),
    ],
}

TENDER_SUBJECTS = {
    "en": ["cleaning services", "maintenance of heating systems", "translation services",
           "IT helpdesk support", "printing of information leaflets", "security guarding",
           "catering for staff events", "removal services", "supply of office furniture",
           "supply of laptops", "maintenance of lifts", "waste collection and recycling"],
    "fr": ["nettoyage des locaux", "maintenance des installations de chauffage",
           "prestations de traduction", "assistance informatique aux utilisateurs",
           "impression de dépliants d'information", "gardiennage et surveillance",
           "restauration pour les événements internes", "déménagement de services",
           "fourniture de mobilier de bureau", "fourniture d'ordinateurs portables",
           "entretien des ascenseurs", "collecte et recyclage des déchets"],
}

PROCEDURES = {
    "en": ["open procedure", "restricted procedure", "competitive procedure with negotiation"],
    "fr": ["procédure ouverte", "procédure restreinte", "procédure avec négociation"],
}

OFFICE_SERVICES = {
    "en": ["help with grant applications", "registration of associations",
           "information on housing aid", "support for online procedures",
           "appointments with a social adviser", "certification of documents",
           "information for new businesses", "consultation of public records"],
    "fr": ["aide au montage des demandes de subvention", "enregistrement des associations",
           "information sur les aides au logement", "accompagnement aux démarches en ligne",
           "rendez-vous avec un conseiller social", "certification de documents",
           "information des créateurs d'entreprise", "consultation des registres publics"],
}

# Threshold ranges of the regulations' scopes, in the order of the subjects below.
SCOPE_RANGES = [(1000, 200000, 500), (10, 400, 1), (10, 300, 1), (250, 20000, 50),
                (500, 100000, 250), (30, 180, 1), (500, 50000, 50), (500, 5000, 50)]

REGULATION_SUBJECTS = {
    "en": [
        ("the accessibility of public websites", "public bodies operating a website with more than {n} monthly visits"),
        ("noise limits for construction sites", "construction sites lasting more than {n} days"),
        ("the licensing of street markets", "markets with more than {n} stalls"),
        ("the energy performance of public buildings", "public buildings with a floor area above {n} square metres"),
        ("data sharing between administrations", "administrations processing more than {n} files per year"),
        ("short-term rental declarations", "owners renting a furnished home for more than {n} nights per year"),
        ("municipal waste collection fees", "municipalities with more than {n} households"),
        ("school transport subsidies", "families living more than {n} metres from the nearest school"),
    ],
    "fr": [
        ("l'accessibilité des sites internet publics", "les organismes publics dont le site reçoit plus de {n} visites par mois"),
        ("les nuisances sonores des chantiers", "les chantiers d'une durée supérieure à {n} jours"),
        ("l'autorisation des marchés de plein air", "les marchés de plus de {n} étals"),
        ("la performance énergétique des bâtiments publics", "les bâtiments publics d'une surface supérieure à {n} mètres carrés"),
        ("l'échange de données entre administrations", "les administrations traitant plus de {n} dossiers par an"),
        ("la déclaration des locations de courte durée", "les propriétaires louant un meublé plus de {n} nuits par an"),
        ("la redevance d'enlèvement des ordures ménagères", "les communes de plus de {n} foyers"),
        ("l'aide au transport scolaire", "les familles domiciliées à plus de {n} mètres de l'école la plus proche"),
    ],
}


# ---------------------------------------------------------------- offices

def make_office(lang, town):
    number_ = U.draw("office-code", lambda: R.randint(100, 999))
    head = U.draw("head-" + lang, lambda: f"{pick(FIRST_NAMES[lang])} {pick(LAST_NAMES[lang])}")
    street_no = R.randint(1, 180)
    street = pick(STREETS[lang])
    ext = extension()
    staff = R.randint(6, 48)
    bus = R.randint(1, 39)
    services = R.sample(OFFICE_SERVICES[lang], 4)
    appointment_days = R.randint(2, 7)
    if lang == "en":
        code = f"RO-{number_}"
        doc = Doc("office", lang, code, f"office-ro-{number_}-{slug(town)}", f"{town} Regional Office ({code})")
        days = pick(["Monday to Friday", "Monday to Thursday", "Tuesday to Friday"])
        opens = pick(["8:30", "9:00", "9:30"])
        closes = pick(["16:30", "17:00", "17:30"])
        late = pick(["Monday", "Tuesday", "Wednesday", "Thursday"])
        address = f"located at {street_no} {street}, {town}"
        head_ev = f"The office is headed by {head}"
        phone_ev = f"switchboard is reached on extension {ext}"
        hours_ev = f"open {days} from {opens} to {closes}"
        late_ev = f"On {late}, the counter stays open until 19:00"
        staff_ev = f"a team of {staff} staff"
        doc.meta = [("Office code", code), ("Network", "Regional offices of the Agency for Public Services")]
        doc.section("About the office", ("p", f"The {town} regional office is the Agency's local point of contact for residents, associations and municipalities of the {town} district. {head_ev}, who leads {staff_ev} including advisers, case officers and reception staff."))
        doc.section("Address and access", ("p", f"The office is {address}. Bus line {bus} stops in front of the building. The entrance is step-free and a hearing loop is available at the reception desk."))
        doc.section("Opening hours", ("p", f"The public counter is {hours_ev}. {late_ev} for people who have booked an appointment. The office is closed on public holidays and on the Friday after Ascension Day."))
        doc.section("Services", ("ul", [s[0].upper() + s[1:] for s in services]), ("p", "Requests that need a specialist are forwarded to the competent directorate at head office, which answers within the usual deadlines."))
        doc.section("Appointments and contact", ("p", f"The office {phone_ev}. Appointments with an adviser should be booked at least {appointment_days} working days ahead. Visitors without an appointment are received in order of arrival."))
        name = f"the {town} regional office"
        doc.facts = [
            Fact("address", f"{street_no} {street}, {town}", address,
                 [f"What is the street address of {name}?", f"Where is office {code} located?"]),
            Fact("head", head, head_ev,
                 [f"Who is in charge of {name}?", f"Who heads regional office {code}?"]),
            Fact("phone", f"Extension {ext}", phone_ev,
                 [f"On which extension can I call {name}?", f"switchboard extension {town} regional office"]),
            Fact("hours", f"{days}, {opens} to {closes}", hours_ev,
                 [f"What are the opening hours of the counter at {name}?"]),
            Fact("late", f"On {late}, until 19:00 (by appointment)", late_ev,
                 [f"Which day does {name} stay open late, and until when?"]),
            Fact("staff", f"{staff} staff", staff_ev,
                 [f"How many people work at {name}?"]),
        ]
    else:
        code = f"ANT-{number_}"
        doc = Doc("office", lang, code, f"antenne-ant-{number_}-{slug(town)}", f"Antenne régionale de {town} ({code})")
        days = pick(["du lundi au vendredi", "du lundi au jeudi", "du mardi au vendredi"])
        opens = pick(["8 h 30", "9 h", "9 h 30"])
        closes = pick(["16 h 30", "17 h", "17 h 30"])
        late = pick(["lundi", "mardi", "mercredi", "jeudi"])
        address = f"située au {street_no}, {street}, à {town}"
        head_ev = f"L'antenne est dirigée par {head}"
        phone_ev = f"standard est joignable au poste {ext}"
        hours_ev = f"ouvert au public {days} de {opens} à {closes}"
        late_ev = f"Le {late}, l'accueil reste ouvert jusqu'à 19 h"
        staff_ev = f"une équipe de {staff} agents"
        doc.meta = [("Code de l'antenne", code), ("Réseau", "Antennes régionales de l'Agence des services publics")]
        doc.section("Présentation", ("p", f"L'antenne régionale de {town} est le point de contact de proximité de l'Agence pour les habitants, les associations et les communes du secteur de {town}. {head_ev}, qui encadre {staff_ev} : conseillers, instructeurs et agents d'accueil."))
        doc.section("Adresse et accès", ("p", f"L'antenne est {address}. La ligne de bus {bus} dessert l'arrêt situé devant le bâtiment. L'entrée est de plain-pied et une boucle magnétique équipe la banque d'accueil."))
        doc.section("Horaires d'ouverture", ("p", f"L'accueil est {hours_ev}. {late_ev} pour les personnes ayant pris rendez-vous. L'antenne est fermée les jours fériés ainsi que le vendredi qui suit l'Ascension."))
        doc.section("Services proposés", ("ul", [s[0].upper() + s[1:] for s in services]), ("p", "Les demandes nécessitant l'avis d'un spécialiste sont transmises à la direction compétente du siège, qui y répond dans les délais habituels."))
        doc.section("Rendez-vous et contact", ("p", f"Le {phone_ev}. Les rendez-vous avec un conseiller sont pris au moins {appointment_days} jours ouvrés à l'avance. Les visiteurs sans rendez-vous sont reçus par ordre d'arrivée."))
        name = f"l'antenne régionale de {town}"
        doc.facts = [
            Fact("address", f"{street_no}, {street}, {town}", address,
                 [f"Quelle est l'adresse de {name} ?", f"Où se trouve l'antenne {code} ?"]),
            Fact("head", head, head_ev,
                 [f"Qui dirige {name} ?", f"Qui est responsable de l'antenne {code} ?"]),
            Fact("phone", f"Poste {ext}", phone_ev,
                 [f"À quel poste peut-on joindre {name} ?", f"numéro de poste standard antenne {code}"]),
            Fact("hours", f"{days}, de {opens} à {closes}", hours_ev,
                 [f"Quels sont les horaires d'ouverture de {name} ?"]),
            Fact("late", f"Le {late}, jusqu'à 19 h (sur rendez-vous)", late_ev,
                 [f"Quel jour {name} ferme-t-elle plus tard ?"]),
            Fact("staff", f"{staff} agents", staff_ev,
                 [f"Combien d'agents travaillent à {name} ?"]),
        ]
    doc.town = town
    return doc


# ---------------------------------------------------------------- grants

def eligibility(lang):
    def make():
        rule = R.randrange(4)
        if lang == "en":
            if rule == 0:
                return f"municipalities with fewer than {number(R.randrange(2000, 60000, 250), lang)} inhabitants"
            if rule == 1:
                return f"non-profit associations employing no more than {R.randint(5, 150)} staff"
            if rule == 2:
                return f"small enterprises with an annual turnover below {money(R.randrange(200000, 5000000, 25000), lang)}"
            return f"public schools and colleges with at least {R.randrange(100, 3000, 10)} pupils"
        if rule == 0:
            return f"les communes de moins de {number(R.randrange(2000, 60000, 250), lang)} habitants"
        if rule == 1:
            return f"les associations employant au plus {R.randint(5, 150)} salariés"
        if rule == 2:
            return f"les petites entreprises dont le chiffre d'affaires annuel est inférieur à {money(R.randrange(200000, 5000000, 25000), lang)}"
        return f"les établissements scolaires publics accueillant au moins {R.randrange(100, 3000, 10)} élèves"
    return U.draw("eligibility-" + lang, make)


def make_grant(lang, theme, purpose, town, year):
    number_ = U.draw("grant-code", lambda: R.randint(1000, 9999))
    budget = U.draw("budget", lambda: R.randrange(150000, 6000000, 2500))
    cap = U.draw("cap", lambda: R.randrange(10000, 250000, 500))
    rate = pick([40, 50, 60, 70, 80])
    months = pick([12, 18, 24, 30, 36])
    deadline = unique_day(f"grant-deadline-{lang}", datetime.date(year, 2, 1), 240)
    decision = U.draw(f"grant-decision-{lang}", lambda: shift(deadline, 40, 120))
    hour = pick(["12:00", "16:00", "17:00", "23:59"]) if lang == "en" else pick(["12 h", "16 h", "17 h", "23 h 59"])
    who = eligibility(lang)
    directorate = pick(DIRECTORATES[lang])
    ext = extension()
    report_days = pick([30, 60, 90])
    if lang == "en":
        code = f"GP-{number_}"
        doc = Doc("grant", lang, code, f"grant-gp-{number_}", f"{theme} Grant Programme, {year} round")
        budget_ev = f"total envelope of {money(budget, lang)}"
        rate_ev = f"covers up to {rate} % of eligible costs, capped at {money(cap, lang)}"
        cap_ev = f"capped at {money(cap, lang)} per project"
        deadline_ev = f"Applications close on {date_text(deadline, lang)} at {hour}"
        decision_ev = f"Decisions will be notified by {date_text(decision, lang)}"
        who_ev = f"Eligible applicants are {who}"
        contact_ev = f"{town} regional office, extension {ext}"
        doc.meta = [("Programme code", code), ("Managing service", directorate), ("Area", f"{town} district"), ("Status", "open for applications")]
        doc.section("Purpose", ("p", f"The Agency for Public Services opens the {year} round of its {theme.lower()} programme for the {town} district. {purpose} The round has a {budget_ev}."))
        doc.section("Who can apply", ("p", f"{who_ev}. Applicants must have their seat or their project in the {town} district. Private individuals and organisations on the exclusion register cannot apply."))
        doc.section("Funding rules", ("p", f"The grant {rate_ev} per project. Costs incurred before the application was filed are not eligible. Projects must be completed within {months} months of the grant decision."), ("ul", ["staff costs directly linked to the project", "equipment and works", "external services and studies", "communication costs up to 5 % of the total"]))
        doc.section("How to apply", ("p", f"{deadline_ev}. Files are submitted on the Agency's grants portal with the standard application form GA-1 and the budget annex GA-2. Incomplete files are not assessed."), ("p", f"A selection committee ranks the projects. {decision_ev}. Grant holders send a final report within {report_days} days of completing the project."))
        doc.section("Contact", ("p", f"Enquiries are handled by the grants desk of the {contact_ev}. Questions received less than five working days before the closing date may not be answered in time."))
        doc.facts = [
            Fact("budget", money(budget, lang), budget_ev,
                 [f"What is the total budget of grant programme {code}?", f"How much funding is available overall under {code}?", f"{code} total envelope"]),
            Fact("deadline", f"{date_text(deadline, lang)} at {hour}", deadline_ev,
                 [f"When is the application deadline for programme {code}?", f"By what date and time must applications to {code} be submitted?", f"closing date {code}"]),
            Fact("cap", f"{money(cap, lang)} per project", cap_ev,
                 [f"What is the maximum grant per project under {code}?", f"How much can one project receive at most from programme {code}?"]),
            Fact("rate", f"Up to {rate} % of eligible costs", rate_ev,
                 [f"What share of eligible costs does programme {code} cover?"]),
            Fact("decision", date_text(decision, lang), decision_ev,
                 [f"When will applicants to {code} hear whether they got the grant?"]),
            Fact("eligibility", who[0].upper() + who[1:], who_ev,
                 [f"Who is eligible to apply to grant programme {code}?"]),
            Fact("contact", f"The grants desk of the {town} regional office, extension {ext}", contact_ev,
                 [f"Which office and extension should I contact about programme {code}?"]),
        ]
    else:
        code = f"PS-{number_}"
        doc = Doc("grant", lang, code, f"subvention-ps-{number_}", f"Programme de subvention « {theme} », session {year}")
        budget_ev = f"enveloppe globale de {money(budget, lang)}"
        rate_ev = f"couvre au plus {rate} % des dépenses éligibles, dans la limite de {money(cap, lang)}"
        cap_ev = f"dans la limite de {money(cap, lang)} par projet"
        deadline_ev = f"déposés au plus tard le {date_text(deadline, lang)} à {hour}"
        decision_ev = f"Les décisions seront notifiées au plus tard le {date_text(decision, lang)}"
        who_ev = f"Peuvent déposer un dossier {who}"
        contact_ev = f"antenne régionale de {town}, poste {ext}"
        doc.meta = [("Code du programme", code), ("Service gestionnaire", directorate), ("Territoire", f"secteur de {town}"), ("État", "appel à projets ouvert")]
        doc.section("Objet", ("p", f"L'Agence des services publics ouvre la session {year} du programme « {theme} » pour le secteur de {town}. {purpose} Cette session est dotée d'une {budget_ev}."))
        doc.section("Bénéficiaires", ("p", f"{who_ev}. Le siège du porteur ou le lieu du projet doit se trouver dans le secteur de {town}. Les particuliers et les organismes inscrits au fichier des exclusions ne sont pas éligibles."))
        doc.section("Modalités de financement", ("p", f"La subvention {rate_ev} par projet. Les dépenses engagées avant le dépôt de la demande ne sont pas éligibles. Le projet doit être achevé dans les {months} mois suivant la décision d'attribution."), ("ul", ["dépenses de personnel directement liées au projet", "équipements et travaux", "prestations extérieures et études", "frais de communication dans la limite de 5 % du total"]))
        doc.section("Dépôt des dossiers", ("p", f"Les dossiers sont {deadline_ev}, sur le portail des subventions de l'Agence, au moyen du formulaire de demande GA-1 et de l'annexe budgétaire GA-2. Les dossiers incomplets ne sont pas instruits."), ("p", f"Un comité de sélection classe les projets. {decision_ev}. Le bénéficiaire transmet un rapport final dans les {report_days} jours suivant l'achèvement du projet."))
        doc.section("Contact", ("p", f"Les questions sont traitées par le guichet des subventions de l'{contact_ev}. Les questions reçues moins de cinq jours ouvrés avant la clôture risquent de ne pas recevoir de réponse à temps."))
        doc.facts = [
            Fact("budget", money(budget, lang), budget_ev,
                 [f"Quel est le montant total du programme de subvention {code} ?", f"Quelle enveloppe est prévue pour {code} ?", f"{code} enveloppe globale"]),
            Fact("deadline", f"{date_text(deadline, lang)} à {hour}", deadline_ev,
                 [f"Quelle est la date limite de dépôt des dossiers pour le programme {code} ?", f"Jusqu'à quand peut-on candidater au programme {code} ?"]),
            Fact("cap", f"{money(cap, lang)} par projet", cap_ev,
                 [f"Quel est le montant maximal de subvention par projet pour {code} ?"]),
            Fact("rate", f"Au plus {rate} % des dépenses éligibles", rate_ev,
                 [f"Quel pourcentage des dépenses le programme {code} prend-il en charge ?"]),
            Fact("decision", date_text(decision, lang), decision_ev,
                 [f"À quelle date les candidats au programme {code} connaîtront-ils la décision ?"]),
            Fact("eligibility", who[0].upper() + who[1:], who_ev,
                 [f"Qui peut demander une subvention au titre du programme {code} ?"]),
            Fact("contact", f"Le guichet des subventions de l'antenne régionale de {town}, poste {ext}", contact_ev,
                 [f"Quel service contacter pour une question sur le programme {code} ?"]),
        ]
    return doc


# ---------------------------------------------------------------- tenders

def make_tender(lang, subject, town, year):
    number_ = U.draw("tender-code", lambda: R.randint(100, 9999))
    value = U.draw("tender-value", lambda: R.randrange(40000, 3000000, 100))
    turnover = U.draw("tender-turnover", lambda: R.randrange(50000, 5000000, 5000))
    months = pick([12, 24, 36, 48])
    renewals = pick([0, 1, 2, 3])
    price = pick([30, 40, 50, 60])
    quality = 100 - price - pick([0, 10, 15])
    environment = 100 - price - quality
    deadline = unique_day(f"tender-deadline-{lang}", datetime.date(year, 1, 10), 330)
    visit = U.draw(f"tender-visit-{lang}", lambda: shift(deadline, -25, -12))
    questions_until = shift(deadline, -10, -8)
    procedure = pick(PROCEDURES[lang])
    ext = extension()
    lots = R.randint(1, 4)
    directorate = pick(DIRECTORATES[lang])
    lot_values = []
    remaining = value
    for i in range(lots - 1):
        share = remaining * R.randint(20, 50) // 100
        share -= share % 100
        lot_values.append(share)
        remaining -= share
    lot_values.append(remaining)
    if lang == "en":
        code = f"PN-{year}-{number_:04d}"
        doc = Doc("tender", lang, code, f"tender-pn-{year}-{number_:04d}", f"Call for tenders {code}: {subject}")
        value_ev = f"estimated total value of {money(value, lang)} excluding VAT"
        turnover_ev = f"minimum annual turnover of {money(turnover, lang)}"
        deadline_ev = f"Tenders must reach the Agency by {date_text(deadline, lang)} at 16:00"
        visit_ev = f"optional site visit takes place on {date_text(visit, lang)}"
        contact_ev = f"procurement officer for this procedure can be reached on extension {ext}"
        if environment:
            criteria = f"price ({price} %), technical quality ({quality} %) and environmental performance ({environment} %)"
        else:
            criteria = f"price ({price} %) and technical quality ({quality} %)"
        criteria_ev = f"ranked on {criteria}"
        duration_ev = f"The contract runs for {months} months"
        renew = "cannot be renewed" if renewals == 0 else f"may be renewed {['once', 'twice', 'three times'][renewals - 1]} for 12 months"
        doc.meta = [("Reference", code), ("Contracting authority", f"Agency for Public Services, {directorate}"), ("Procedure", procedure), ("Place of performance", f"{town} regional office and annexes")]
        doc.section("Object of the contract", ("p", f"The Agency is looking for a contractor for {subject} at its {town} regional office and annexes. The contract has an {value_ev}."))
        if lots > 1:
            rows = [[f"Lot {i + 1}", money(v, lang)] for i, v in enumerate(lot_values)]
            doc.section("Lots", ("p", f"The contract is divided into {lots} lots. A tenderer may bid for one or several lots."), ("table", ["Lot", "Estimated value"], rows))
        doc.section("Duration", ("p", f"{duration_ev} from the date of signature and {renew}."))
        doc.section("Selection criteria", ("p", f"Tenderers must show a {turnover_ev} over the last three financial years, hold professional liability insurance and provide the declaration on exclusion grounds."))
        doc.section("Award criteria", ("p", f"Compliant tenders are {criteria_ev}. Abnormally low tenders are asked for written explanations before being rejected."))
        doc.section("Timetable", ("ul", [f"Questions may be sent until {date_text(questions_until, lang)}", f"An {visit_ev} at 10:00", f"{deadline_ev}", "Tenders are opened in a closed session on the next working day"]))
        doc.section("Contact", ("p", f"Questions are sent through the procurement platform. The {contact_ev} from 9:00 to 12:00. Answers to questions are published for all tenderers."))
        doc.facts = [
            Fact("value", f"{money(value, lang)} excluding VAT", value_ev,
                 [f"What is the estimated value of call for tenders {code}?", f"How much is contract {code} expected to be worth?"]),
            Fact("deadline", f"{date_text(deadline, lang)} at 16:00", deadline_ev,
                 [f"What is the deadline for submitting bids in procedure {code}?", f"{code} tender submission deadline"]),
            Fact("visit", date_text(visit, lang) + " at 10:00", visit_ev,
                 [f"Is there a site visit for tender {code}, and when?"]),
            Fact("turnover", money(turnover, lang), turnover_ev,
                 [f"What minimum turnover must bidders have for {code}?"]),
            Fact("contact", f"Extension {ext}", contact_ev,
                 [f"Which extension reaches the procurement officer handling {code}?"]),
            Fact("criteria", criteria[0].upper() + criteria[1:], criteria_ev,
                 [f"How are tenders for {code} weighted?"]),
            Fact("duration", f"{months} months", duration_ev,
                 [f"How long does the contract awarded under {code} last?"]),
        ]
    else:
        code = f"AM-{year}-{number_:04d}"
        doc = Doc("tender", lang, code, f"marche-am-{year}-{number_:04d}", f"Avis de marché {code} : {subject}")
        value_ev = f"montant estimé à {money(value, lang)} hors taxes"
        turnover_ev = f"chiffre d'affaires annuel minimal de {money(turnover, lang)}"
        deadline_ev = f"Les offres doivent parvenir à l'Agence avant le {date_text(deadline, lang)} à 16 h"
        visit_ev = f"visite facultative des lieux est organisée le {date_text(visit, lang)}"
        contact_ev = f"acheteur chargé de la procédure, au poste {ext}"
        if environment:
            criteria = f"prix ({price} %), valeur technique ({quality} %) et performance environnementale ({environment} %)"
        else:
            criteria = f"prix ({price} %) et valeur technique ({quality} %)"
        criteria_ev = f"classées selon les critères suivants : {criteria}"
        duration_ev = f"Le marché est conclu pour une durée de {months} mois"
        renew = "n'est pas reconductible" if renewals == 0 else f"peut être reconduit {renewals} fois par période de 12 mois"
        doc.meta = [("Référence", code), ("Pouvoir adjudicateur", f"Agence des services publics, {directorate}"), ("Procédure", procedure), ("Lieu d'exécution", f"antenne régionale de {town} et annexes")]
        doc.section("Objet du marché", ("p", f"L'Agence recherche un titulaire pour les prestations de {subject} de son antenne régionale de {town} et de ses annexes. Le marché a un {value_ev}."))
        if lots > 1:
            rows = [[f"Lot {i + 1}", money(v, lang)] for i, v in enumerate(lot_values)]
            doc.section("Allotissement", ("p", f"Le marché est divisé en {lots} lots. Un candidat peut présenter une offre pour un ou plusieurs lots."), ("table", ["Lot", "Montant estimé"], rows))
        doc.section("Durée", ("p", f"{duration_ev} à compter de sa notification ; il {renew}."))
        doc.section("Conditions de participation", ("p", f"Les candidats justifient d'un {turnover_ev} sur les trois derniers exercices, d'une assurance de responsabilité civile professionnelle et de la déclaration relative aux motifs d'exclusion."))
        doc.section("Critères d'attribution", ("p", f"Les offres conformes sont {criteria_ev}. Les offres anormalement basses font l'objet d'une demande de précisions écrite avant tout rejet."))
        doc.section("Calendrier", ("ul", [f"Les questions peuvent être posées jusqu'au {date_text(questions_until, lang)}", f"Une {visit_ev} à 10 h", f"{deadline_ev}", "Les plis sont ouverts en séance non publique le jour ouvré suivant"]))
        doc.section("Renseignements", ("p", f"Les questions sont posées sur la plateforme des marchés. L'{contact_ev}, répond aux appels de 9 h à 12 h. Les réponses sont publiées pour l'ensemble des candidats."))
        doc.facts = [
            Fact("value", f"{money(value, lang)} hors taxes", value_ev,
                 [f"Quel est le montant estimé du marché {code} ?", f"Combien vaut le marché {code} ?"]),
            Fact("deadline", f"{date_text(deadline, lang)} à 16 h", deadline_ev,
                 [f"Quelle est la date limite de remise des offres pour le marché {code} ?", f"{code} date limite des offres"]),
            Fact("visit", date_text(visit, lang) + " à 10 h", visit_ev,
                 [f"Une visite des lieux est-elle prévue pour le marché {code} ?"]),
            Fact("turnover", money(turnover, lang), turnover_ev,
                 [f"Quel chiffre d'affaires minimal faut-il pour candidater au marché {code} ?"]),
            Fact("contact", f"Poste {ext}", contact_ev,
                 [f"À quel poste joindre l'acheteur du marché {code} ?"]),
            Fact("criteria", criteria[0].upper() + criteria[1:], criteria_ev,
                 [f"Comment les offres du marché {code} sont-elles notées ?"]),
            Fact("duration", f"{months} mois", duration_ev,
                 [f"Quelle est la durée du marché {code} ?"]),
        ]
    return doc


# ---------------------------------------------------------------- regulations

def make_regulation(lang, index, year):
    subject, scope_template = REGULATION_SUBJECTS[lang][index]
    low, high, step = SCOPE_RANGES[index]
    number_ = U.draw(f"regulation-code-{year}", lambda: R.randint(10, 399))
    adopted = unique_day(f"reg-adopted-{lang}", datetime.date(year, 1, 5), 350)
    in_force = U.draw(f"reg-force-{lang}", lambda: shift(adopted, 30, 200))
    transition_months = pick([6, 12, 18, 24])
    transition_end = U.draw(f"reg-transition-{lang}", lambda: shift(in_force, transition_months * 30 - 5, transition_months * 30 + 5))
    fine = U.draw("reg-fine", lambda: R.randrange(500, 150000, 250))
    threshold = U.draw(f"reg-threshold-{lang}-{index}", lambda: R.randrange(low, high, step))
    answer_days = pick([15, 20, 30, 45, 60])
    review = year + pick([3, 4, 5])
    directorate = pick(DIRECTORATES[lang])
    ext = extension()
    scope = scope_template.format(n=number(threshold, lang))
    if lang == "en":
        code = f"REG-{year}/{number_:03d}"
        doc = Doc("regulation", lang, code, f"regulation-reg-{year}-{number_:03d}", f"Summary of Regulation {code} on {subject}")
        adopted_ev = f"adopted by the Management Board on {date_text(adopted, lang)}"
        force_ev = f"enters into force on {date_text(in_force, lang)}"
        scope_ev = f"applies to {scope}"
        transition_ev = f"must comply by {date_text(transition_end, lang)}"
        fine_ev = f"administrative fine of up to {money(fine, lang)}"
        contact_ev = f"{directorate}, extension {ext}"
        doc.meta = [("Reference", code), ("Subject", subject[0].upper() + subject[1:]), ("Status", "in force" if in_force.year < 2026 else "adopted, not yet in force"), ("Responsible service", directorate)]
        doc.section("Background", ("p", f"Regulation {code} was {adopted_ev} after a public consultation. It replaces earlier guidance on {subject} that had no binding force. It {force_ev}."))
        doc.section("Scope", ("p", f"The regulation {scope_ev}. Those below this threshold are encouraged to follow it on a voluntary basis."))
        doc.section("Main obligations", ("ul", ["keep a register of the measures taken", f"answer any request from the Agency within {answer_days} days", "designate a contact person and notify the Agency of any change", "publish an annual summary of compliance"]))
        doc.section("Transition period", ("p", f"Bodies already active when the regulation takes effect have a transition period of {transition_months} months and {transition_ev}. New bodies must comply from the start of their activity."))
        doc.section("Penalties", ("p", f"A breach of the main obligations may lead to an {fine_ev}, after a formal notice giving at least 30 days to remedy the situation."))
        doc.section("Review and contact", ("p", f"The Agency will evaluate the regulation by {review}. Questions about its application are handled by the {contact_ev}."))
        doc.facts = [
            Fact("adopted", date_text(adopted, lang), adopted_ev,
                 [f"When was regulation {code} adopted?"]),
            Fact("force", date_text(in_force, lang), force_ev,
                 [f"From what date does regulation {code} apply?", f"{code} entry into force"]),
            Fact("scope", scope[0].upper() + scope[1:], scope_ev,
                 [f"Who is covered by regulation {code}?"]),
            Fact("transition", date_text(transition_end, lang), transition_ev,
                 [f"By when must existing bodies comply with {code}?"]),
            Fact("fine", money(fine, lang), fine_ev,
                 [f"What is the maximum fine under regulation {code}?", f"How much can a breach of {code} cost?"]),
            Fact("contact", f"The {directorate}, extension {ext}", contact_ev,
                 [f"Who answers questions about regulation {code}?"]),
        ]
    else:
        code = f"RGL-{year}/{number_:03d}"
        doc = Doc("regulation", lang, code, f"reglement-rgl-{year}-{number_:03d}", f"Synthèse du règlement {code} relatif {contract_a(subject)}")
        adopted_ev = f"adopté par le conseil d'administration le {date_text(adopted, lang)}"
        force_ev = f"entre en vigueur le {date_text(in_force, lang)}"
        scope_ev = "s'applique " + contract_a(scope)
        transition_ev = f"se mettre en conformité au plus tard le {date_text(transition_end, lang)}"
        fine_ev = f"amende administrative pouvant atteindre {money(fine, lang)}"
        contact_ev = f"{directorate}, poste {ext}"
        doc.meta = [("Référence", code), ("Objet", subject[0].upper() + subject[1:]), ("Statut", "en vigueur" if in_force.year < 2026 else "adopté, pas encore en vigueur"), ("Service référent", directorate)]
        doc.section("Contexte", ("p", f"Le règlement {code} a été {adopted_ev}, à l'issue d'une consultation publique. Il remplace des recommandations dépourvues de valeur contraignante. Il {force_ev}."))
        doc.section("Champ d'application", ("p", f"Le règlement {scope_ev}. Les personnes et organismes situés sous ce seuil sont invités à l'appliquer volontairement."))
        doc.section("Principales obligations", ("ul", ["tenir un registre des mesures prises", f"répondre à toute demande de l'Agence dans un délai de {answer_days} jours", "désigner un référent et signaler à l'Agence tout changement", "publier chaque année un bilan de conformité"]))
        doc.section("Période transitoire", ("p", f"Les structures déjà en activité disposent d'une période transitoire de {transition_months} mois et doivent {transition_ev}. Les nouvelles structures s'y conforment dès le début de leur activité."))
        doc.section("Sanctions", ("p", f"Le manquement aux principales obligations peut donner lieu à une {fine_ev}, après une mise en demeure laissant au moins 30 jours pour régulariser la situation."))
        doc.section("Évaluation et contact", ("p", f"L'Agence évaluera le règlement d'ici {review}. Les questions relatives à son application sont traitées par la {contact_ev}."))
        doc.facts = [
            Fact("adopted", date_text(adopted, lang), adopted_ev,
                 [f"Quand le règlement {code} a-t-il été adopté ?"]),
            Fact("force", date_text(in_force, lang), force_ev,
                 [f"À partir de quelle date le règlement {code} s'applique-t-il ?", f"{code} date d'entrée en vigueur"]),
            Fact("scope", scope[0].upper() + scope[1:], scope_ev,
                 [f"Qui est concerné par le règlement {code} ?"]),
            Fact("transition", date_text(transition_end, lang), transition_ev,
                 [f"Avant quelle date les structures existantes doivent-elles respecter le règlement {code} ?"]),
            Fact("fine", money(fine, lang), fine_ev,
                 [f"Quelle est l'amende maximale prévue par le règlement {code} ?"]),
            Fact("contact", f"La {directorate}, poste {ext}", contact_ev,
                 [f"Quel service répond aux questions sur le règlement {code} ?"]),
        ]
    return doc


# ---------------------------------------------------------------- corpus

def build_documents():
    documents = []
    for lang in ("en", "fr"):
        column = 0 if lang == "en" else 1
        towns = R.sample(TOWNS[lang], COUNTS["office"][column])
        offices = [make_office(lang, town) for town in towns]
        documents += offices

        # Grant programmes come in families: one theme in one district,
        # with one to three yearly rounds that differ only by code and figures.
        grants = []
        while len(grants) < COUNTS["grant"][column]:
            theme, purpose = pick(GRANT_THEMES[lang])
            town = pick(towns)
            rounds = min(R.randint(1, 3), COUNTS["grant"][column] - len(grants))
            for year in sorted(R.sample([2023, 2024, 2025, 2026], rounds)):
                grants.append(make_grant(lang, theme, purpose, town, year))
        documents += grants

        # Calls for tenders also repeat: the same service for the same office,
        # tendered again in a later year.
        tenders = []
        while len(tenders) < COUNTS["tender"][column]:
            subject = pick(TENDER_SUBJECTS[lang])
            town = pick(towns)
            rounds = min(R.randint(1, 2), COUNTS["tender"][column] - len(tenders))
            for year in sorted(R.sample([2023, 2024, 2025, 2026], rounds)):
                tenders.append(make_tender(lang, subject, town, year))
        documents += tenders

        regulations = []
        while len(regulations) < COUNTS["regulation"][column]:
            index = R.randrange(len(REGULATION_SUBJECTS[lang]))
            regulations.append(make_regulation(lang, index, pick([2022, 2023, 2024, 2025])))
        documents += regulations

    markdown_share = {"grant": 0.7, "tender": 0.3, "office": 0.6, "regulation": 0.4}
    for doc in documents:
        if R.random() < markdown_share[doc.kind]:
            doc.name += ".md"
            doc.text = render_markdown(doc)
        else:
            doc.name += ".txt"
            doc.text = render_text(doc)
    names = [doc.name for doc in documents]
    assert len(set(names)) == len(names), "document names must be unique"
    codes = [doc.code for doc in documents]
    assert len(set(codes)) == len(codes), "document codes must be unique"
    return documents


def evidence_is_well_formed(text):
    words = len(text.split())
    return (3 <= words <= 12 and "\n" not in text and "**" not in text
            and "|" not in text and text == text.strip())


def occurrences(documents, text):
    return sum(doc.text.count(text) for doc in documents)


def fake_code(kind, lang, documents):
    corpus = "\n".join(doc.text for doc in documents)
    while True:
        if kind == "grant":
            code = ("GP-" if lang == "en" else "PS-") + str(R.randint(1000, 9999))
        elif kind == "tender":
            code = ("PN-" if lang == "en" else "AM-") + f"{R.choice([2023, 2024, 2025, 2026])}-{R.randint(100, 9999):04d}"
        elif kind == "regulation":
            code = ("REG-" if lang == "en" else "RGL-") + f"{R.choice([2022, 2023, 2024, 2025])}/{R.randint(10, 399):03d}"
        else:
            code = ("RO-" if lang == "en" else "ANT-") + str(R.randint(100, 999))
        if code not in corpus:
            return code


UNANSWERABLE_TEMPLATES = {
    "en": [
        ("grant", "What is the application deadline of grant programme {code}?"),
        ("tender", "What is the estimated value of call for tenders {code}?"),
        ("regulation", "When does regulation {code} enter into force?"),
    ],
    "fr": [
        ("grant", "Quel est le montant de l'enveloppe du programme de subvention {code} ?"),
        ("tender", "Quelle est la date limite de remise des offres du marché {code} ?"),
        ("office", "Quels sont les horaires d'ouverture de l'antenne {code} ?"),
    ],
}


def build_questions(documents):
    questions = []
    kinds = ["grant", "tender", "office", "regulation"]
    for lang in ("en", "fr"):
        items = []
        rotation = 0
        for kind in kinds:
            pool = [doc for doc in documents if doc.lang == lang and doc.kind == kind]
            R.shuffle(pool)
            taken = 0
            for doc in pool:
                if taken == QUESTIONS_PER_KIND[lang]:
                    break
                usable = [fact for fact in doc.facts
                          if all(evidence_is_well_formed(e) and occurrences(documents, e) == 1
                                 and doc.text.count(e) == 1 for e in fact.evidence)]
                if not usable:
                    continue
                fact = usable[rotation % len(usable)]
                rotation += 1
                items.append((doc, fact, R.choice(fact.questions)))
                taken += 1
            assert taken == QUESTIONS_PER_KIND[lang], f"not enough usable {lang} {kind} documents"
        R.shuffle(items)
        for number_, (doc, fact, question) in enumerate(items, start=1):
            questions.append({
                "id": f"syn-{lang}-{number_:03d}",
                "corpus": "synthetic",
                "lang": lang,
                "question": question,
                "answer": fact.answer,
                "evidence": fact.evidence,
                "document": doc.name,
            })
        number_ = len(items)
        for kind, template in UNANSWERABLE_TEMPLATES[lang][:UNANSWERABLE_PER_LANG]:
            number_ += 1
            questions.append({
                "id": f"syn-{lang}-{number_:03d}",
                "corpus": "synthetic",
                "lang": lang,
                "question": template.format(code=fake_code(kind, lang, documents)),
                "answer": None,
                "evidence": [],
                "document": None,
                "unanswerable": True,
            })
    return questions


def verify(documents, questions):
    by_name = {doc.name: doc for doc in documents}
    ids = [q["id"] for q in questions]
    assert len(set(ids)) == len(ids), "question ids must be unique"
    for q in questions:
        if q.get("unanswerable"):
            assert q["answer"] is None and q["evidence"] == [] and q["document"] is None, q["id"]
            continue
        doc = by_name[q["document"]]
        assert 1 <= len(q["evidence"]) <= 3, q["id"]
        for evidence in q["evidence"]:
            assert evidence_is_well_formed(evidence), (q["id"], evidence)
            assert doc.text.count(evidence) == 1, (q["id"], evidence)
            assert occurrences(documents, evidence) == 1, (q["id"], evidence)
        # The question names the document: by its code, or an office by its town.
        assert doc.code in q["question"] or (doc.kind == "office" and doc.town in q["question"]), q["id"]
        others = [other.name for other in documents if other is not doc and doc.code in other.text]
        assert not others, (q["id"], others)


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    out = pathlib.Path(sys.argv[1])
    documents = build_documents()
    questions = build_questions(documents)
    verify(documents, questions)

    out.mkdir(parents=True, exist_ok=True)
    for doc in documents:
        with open(out / doc.name, "w", encoding="utf-8", newline="\n") as f:
            f.write(doc.text)
    with open(out / "questions.jsonl", "w", encoding="utf-8", newline="\n") as f:
        for q in questions:
            f.write(json.dumps(q, ensure_ascii=False) + "\n")

    langs = {lang: sum(1 for doc in documents if doc.lang == lang) for lang in ("en", "fr")}
    kinds = {}
    for doc in documents:
        kinds[doc.kind] = kinds.get(doc.kind, 0) + 1
    answerable = sum(1 for q in questions if not q.get("unanswerable"))
    print(f"{len(documents)} documents ({langs['en']} en, {langs['fr']} fr; "
          + ", ".join(f"{n} {k}" for k, n in kinds.items())
          + f") and {len(questions)} questions ({answerable} answerable) in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
