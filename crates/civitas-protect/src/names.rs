//! Person names: a gazetteer of given names and family names, and the
//! judges that score a candidate name. The gazetteer joins a short list
//! written for the project (frequent US and French names) and the lists in
//! `data/`, written by `scripts/make-names.py` from the 1990 US census
//! (public domain) and `faker`'s person providers of some forty countries
//! (MIT): about 12,500 given names and 39,000 family names.

use std::collections::HashSet;
use std::sync::LazyLock;

const GIVEN: &str =
    "james john robert michael william david richard joseph thomas charles christopher daniel \
matthew anthony mark donald steven paul andrew joshua kenneth kevin brian george timothy ronald edward jason \
jeffrey ryan jacob gary nicholas eric jonathan stephen larry justin scott brandon benjamin samuel gregory \
frank alexander raymond patrick jack dennis jerry tyler aaron jose adam henry nathan douglas zachary peter \
kyle walter ethan jeremy harold keith christian roger noah gerald carl terry sean austin arthur lawrence \
jesse dylan bryan joe jordan billy bruce albert willie gabriel logan alan juan wayne roy ralph randy eugene \
vincent russell elijah louis bobby philip johnny mary patricia jennifer linda elizabeth barbara susan \
jessica sarah karen nancy lisa betty margaret sandra ashley kimberly emily donna michelle dorothy carol \
amanda melissa deborah stephanie rebecca sharon laura cynthia kathleen amy shirley angela helen anna \
brenda pamela nicole emma samantha katherine christine debra rachel catherine carolyn janet ruth maria \
heather diane virginia julie joyce victoria olivia kelly christina lauren joan evelyn judith megan cheryl \
andrea hannah martha jacqueline frances gloria ann teresa kathryn sara janice jean alice madison doris \
abigail julia judy grace denise amber marilyn beverly danielle theresa sophia marie diana brittany \
natalie isabella charlotte rose alexis kayla jeanne \
jean pierre michel philippe alain nicolas christophe patrick christian daniel bernard eric frédéric \
laurent stéphane david pascal sébastien julien thierry olivier françois jacques thomas dominique \
didier antoine vincent jérôme bruno maxime guillaume mathieu romain alexandre yves hugo lucas louis \
gabriel arthur raphaël léo jules adam paul nathan théo clément baptiste quentin benoît gérard rené \
marcel andré henri claude serge gilles denis franck hervé fabrice emmanuel cédric arnaud damien \
marie nathalie isabelle sylvie catherine françoise christine valérie sandrine véronique anne sophie \
monique nicole martine céline stéphanie julie aurélie caroline émilie chantal brigitte patricia laurence \
camille léa manon chloé inès jade louise alice lina juliette lucie sarah clara margaux océane pauline \
mathilde elodie élodie audrey virginie delphine hélène florence agnès corinne karine laetitia \
jeanne madeleine geneviève josiane danielle mireille odile solange thérèse yvette colette simone \
ahmed mohamed mohammed fatima karim nadia samir yasmine rachid leïla";

const FAMILY: &str = "smith johnson williams brown jones garcia miller davis rodriguez martinez hernandez \
lopez gonzalez wilson anderson thomas taylor moore jackson martin lee perez thompson white harris sanchez \
clark ramirez lewis robinson walker young allen king wright scott torres nguyen hill flores green adams \
nelson baker hall rivera campbell mitchell carter roberts gomez phillips evans turner diaz parker cruz \
edwards collins reyes stewart morris morales murphy cook rogers gutierrez ortiz morgan cooper peterson \
bailey reed kelly howard ramos kim cox ward richardson watson brooks chavez wood james bennett gray \
mendoza ruiz hughes price alvarez castillo sanders patel myers long ross foster jimenez powell jenkins \
perry russell sullivan bell coleman butler henderson barnes fisher vasquez simmons romero jordan \
patterson alexander hamilton graham reynolds griffin wallace moreno west cole hayes bryant herrera \
gibson ellis tran medina aguilar stevens murray ford castro marshall owens harrison fernandez mcdonald \
woods washington kennedy wells vargas henry chen freeman webb tucker guzman burns crawford olson simpson \
porter hunter gordon mendez silva shaw snyder mason dixon munoz hunt hicks holmes palmer wagner black \
robertson boyd rose stone salazar fox warren mills meyer rice schmidt garza daniels ferguson nichols \
stephens soto weaver ryan gardner payne grant dunn kelley spencer hawkins arnold pierce vazquez hansen \
peters santos hart bradley knight elliott cunningham duncan armstrong hudson carroll lane riley andrews \
martin bernard thomas petit robert richard durand dubois moreau laurent simon michel lefebvre leroy \
roux david bertrand morel fournier girard bonnet dupont lambert fontaine rousseau vincent muller lefevre \
faure andre mercier blanc guerin boyer garnier chevalier francois legrand gauthier garcia perrin \
robin clement morin nicolas henry roussel mathieu gautier masson marchand duval denis dumont marie \
lemaire noel meyer dufour meunier brun blanchard giraud joly riviere lucas brunet gaillard barbier \
arnaud martinez gerard roche renard schmitt roy leroux colin vidal caron picard roger fabre aubert \
lemoine renaud dumas lacroix olivier philippe bourgeois pierre benoit rey leclerc payet rolland \
leclercq guillaume lecomte lopez jean dupuy guillot hubert berger carpentier sanchez dupuis moulin \
louis deschamps huet vasseur perez boucher fleury royer klein jacquet adam paris poirier marty aubry \
guyot carre charles renault charpentier menard maillard baron bertin bailly herve schneider fernandez \
collet leger bouvier julien prevost millet perrot daniel le cousin germain breton besson langlois \
remy pelletier leveque perrier leblanc barre lebrun marchal weber mallet hamon boulanger jacob \
monnier michaud rodriguez guichard gillet etienne grondin poulain tessier chevallier collin chauvin \
da bouchet gay lemaitre benard marechal humbert reynaud antoine hoarau perret barthelemy cordier \
pichon lejeune gilbert lamy delaunay pasquier carlier laporte dupré dupre";

/// Capitalized words that follow a title or a greeting without being a
/// name ("Dear Sir", "Bonjour Madame", "Mr President").
const NOT_NAMES: &[&str] = &[
    "sir",
    "madam",
    "madame",
    "monsieur",
    "mesdames",
    "messieurs",
    "all",
    "team",
    "colleagues",
    "everyone",
    "president",
    "président",
    "director",
    "directeur",
    "directrice",
    "minister",
    "ministre",
    "mayor",
    "maire",
    "the",
    "le",
    "la",
    "les",
    "un",
    "une",
    "chair",
    "secretary",
    "customer",
    "client",
    "cliente",
    "user",
];

const GIVEN_DATA: &str = include_str!("../data/given_names.txt");
const FAMILY_DATA: &str = include_str!("../data/family_names.txt");

/// Words in the given-name lists that are far more often something else:
/// never a given name here.
const NEVER_GIVEN: &[&str] = &[
    "in", "le", "la", "les", "de", "du", "des", "ma", "my", "so", "us", "said", "page", "ville", "son", "el",
    "al", "an", "on", "at", "to", "do", "go", "no", "me", "we", "he", "be", "by", "or", "as", "is", "it",
    "of", "et", "un", "une", "sur", "par", "pour", "avec", "mon", "ton", "sa", "se", "ce", "il", "elle",
    "en", "au", "aux",
];

/// Given names that are also common words or places ("Grace period",
/// "Austin Energy", "Nancy"): they make a name only with a known family
/// name, and then with less confidence.
const AMBIGUOUS_GIVEN: &[&str] = &[
    "amber",
    "angel",
    "april",
    "art",
    "august",
    "autumn",
    "bill",
    "bob",
    "candy",
    "carol",
    "chance",
    "chase",
    "crystal",
    "daisy",
    "dale",
    "dawn",
    "dean",
    "destiny",
    "don",
    "duke",
    "earl",
    "faith",
    "frank",
    "gene",
    "ginger",
    "glen",
    "grace",
    "guy",
    "harmony",
    "holly",
    "honey",
    "hope",
    "hunter",
    "iris",
    "ivy",
    "jack",
    "jade",
    "jay",
    "joy",
    "june",
    "king",
    "lane",
    "liberty",
    "lily",
    "love",
    "major",
    "mark",
    "may",
    "melody",
    "miles",
    "pat",
    "pearl",
    "penny",
    "precious",
    "prince",
    "ray",
    "rich",
    "rob",
    "rose",
    "royal",
    "ruby",
    "spring",
    "star",
    "sue",
    "summer",
    "sunny",
    "trinity",
    "violet",
    "wade",
    "will",
    "austin",
    "jackson",
    "orlando",
    "charlotte",
    "florence",
    "lincoln",
    "madison",
    "eugene",
    "tyler",
    "dallas",
    "phoenix",
    "chelsea",
    "sydney",
    "victoria",
    "georgia",
    "virginia",
    "carolina",
    "nancy",
    "lourdes",
    "adelaide",
    "savannah",
    "aurora",
    "paris",
    "israel",
    "jordan",
    "kent",
    "troy",
    "denver",
    "cleveland",
    "houston",
    "logan",
    "marion",
    "camden",
    "santiago",
    "valence",
    "france",
    "marine",
    "constance",
    "prudence",
    "modeste",
    "olive",
    "aimé",
    "désiré",
    "fidèle",
    "justice",
    "sterling",
    "hudson",
    "ellis",
    "mercedes",
    "porsche",
    "ford",
    "dodge",
    "sage",
    "river",
    "sky",
    "storm",
    "rain",
    "stone",
    "rock",
    "cliff",
    "forest",
    "wood",
    "field",
    "brook",
    "bay",
    "bud",
    "buck",
    "dusty",
    "rusty",
    "sandy",
    "misty",
    "cherry",
    "hazel",
    "heather",
    "magnolia",
    "jasmine",
    "olympia",
    "general",
    "colonel",
    "captain",
    "judge",
    "bishop",
    "pastor",
    "deacon",
    "baron",
    "count",
    "marshal",
    "urban",
    "ty",
    "sep",
    "jan",
    "dec",
    "oct",
    "nov",
    "long",
    "young",
    "little",
    "small",
    "black",
    "white",
    "green",
    "brown",
    "gray",
    "grey",
    "north",
    "south",
    "east",
    "west",
];

/// Given names of many countries written for the project, in Latin
/// letters as they appear in agencies' files (the packaged lists are
/// mostly American and European).
const GIVEN_WORLD: &str =
    "aaliyah abdoulaye abdul abdullah abena abiodun adaeze ade adebayo adeola aditi aditya adjoa \
ahmed aiko aisha akira akosua akua ali alejandro amadou amara amina amir anan ananya anjali arash arjun \
asif aya ayodele ayumi babajide bao binh bogdan boris chang chen chiamaka chidi chinedu chioma chinonso \
chukwuemeka dae daisuke deepak dimitri dmitri dmitry emeka eun fatima fatou fatoumata femi folake fumiko \
funmilayo gaurav giorgi gulnara hadiza hamid hana haruto hassan hiroshi hoang huong hyun ibrahim ife \
ifeoma igor ikechukwu imani indira irina ivan jae jahid ji jin jun kaito kamal kavya kemi kenji kiran \
kofi kwabena kwaku kwame kwesi lakshmi linh mai mamadou mariam masako mehmet mei min ming minh mohamed \
mohammed mustafa nadia naveen ngozi nikolai nnamdi obinna oksana olga oluwaseun olumide omar ousmane \
pavel prakash priya rahul raj rajesh ravi reza rohan ryo sakura sanjay seun sergei sergey shin shreya \
sipho siddharth soo sunil svetlana tae takashi tatiana temitope thabo thanh tomoko tuan tunde uchenna \
valentina vikram viktor wei xin yan yasmin yemi yetunde yong yuki yuko yusuf yuri zainab zanele zhang \
zhen zodwa soazig gwenaël gwenaelle maëlle erwan yann yannick loïc tiphaine ronan goulven katell nolwenn \
maïwenn enora yuna mathéo noé inès anaïs chloé zoé léa maëlys océane célia";

/// `word` in lower case without accents ("Éloïse" → "eloise"), the form
/// the lists are kept and looked up in.
fn folded(word: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    word.nfd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

fn listed(written: &[&'static str], data: &'static str) -> HashSet<String> {
    written
        .iter()
        .flat_map(|list| list.split_whitespace())
        .chain(
            data.lines()
                .map(str::trim)
                .filter(|line| !line.is_empty() && !line.starts_with('#')),
        )
        .map(folded)
        .collect()
}

static GIVEN_NAMES: LazyLock<HashSet<String>> = LazyLock::new(|| {
    let mut names = listed(&[GIVEN, GIVEN_WORLD], GIVEN_DATA);
    for word in NEVER_GIVEN {
        names.remove(*word);
    }
    names
});
static FAMILY_NAMES: LazyLock<HashSet<String>> = LazyLock::new(|| listed(&[FAMILY], FAMILY_DATA));

/// Capitals that stand before a name without being a family name ("DOB
/// Sep 13", "CUI Jeanne").
const ACRONYMS: &[&str] = &[
    "dob", "ssn", "ein", "itin", "usa", "us", "cui", "fouo", "irs", "ssa", "dol", "gsa", "hud", "fbi", "cia",
    "nasa", "va", "dhs", "doj", "dod", "hhs", "epa", "opm", "omb", "tsa", "uscis", "cnil", "caf", "urssaf",
    "insee", "dgfip", "cpam", "ars", "sncf", "rib", "iban", "bic", "nir", "siren", "siret", "ref", "re",
    "fw", "tel", "fax", "cc", "bcc", "pdf", "id", "ip", "it", "hr", "rh", "ok",
];

fn words(value: &str) -> Vec<String> {
    value.split_whitespace().map(str::to_lowercase).collect()
}

fn all_capitals(word: &str) -> bool {
    word.chars().filter(|c| c.is_alphabetic()).count() >= 2 && !word.chars().any(char::is_lowercase)
}

/// A name after a title or a greeting: anything capitalized but the
/// words that stand there without being names.
pub fn after_title(value: &str) -> Option<f32> {
    let words = words(value);
    let first = words.first()?;
    if NOT_NAMES.contains(&first.as_str()) {
        return None;
    }
    let known = words.iter().any(|word| given(word) || family(word));
    Some(if known { 0.9 } else { 0.75 })
}

/// Words that end a street's name, never a person's ("Maple Street",
/// "Washington Blvd").
const STREET_WORDS: &[&str] = &[
    "street",
    "st",
    "avenue",
    "ave",
    "road",
    "rd",
    "boulevard",
    "blvd",
    "drive",
    "dr",
    "lane",
    "ln",
    "court",
    "ct",
    "place",
    "pl",
    "way",
    "terrace",
    "parkway",
    "pkwy",
    "circle",
    "cir",
    "highway",
    "hwy",
    "square",
    "plaza",
    "rue",
    "allée",
    "impasse",
    "chemin",
    "route",
    "quai",
    "cours",
    "bridge",
    "park",
    "center",
    "centre",
    "hall",
    "building",
    "hospital",
    "school",
    "college",
    "university",
    "county",
    "city",
    "department",
    "agency",
    "office",
];

fn given(word: &str) -> bool {
    word.split('-').all(|part| GIVEN_NAMES.contains(&folded(part)))
}

fn family(word: &str) -> bool {
    word.split('-').all(|part| FAMILY_NAMES.contains(&folded(part)))
}

/// Capitalized words that may be a name: a known given name first, then a
/// family name — known, or in capitals as French forms write it — scores
/// high; then an unknown capitalized word scores just above the default
/// threshold, unless the given name is also a common word or a place (then
/// it needs a known family name). A family name in capitals before a given
/// name ("MORVAN Loïc", as forms write it) counts too.
pub fn known(value: &str) -> Option<f32> {
    let words = words(value);
    let raw: Vec<&str> = value.split_whitespace().collect();
    if words.len() < 2 {
        return None;
    }
    let first = words.first()?;
    let last = words.last()?;
    let raw_last = raw.last()?;
    if words
        .iter()
        .any(|word| STREET_WORDS.contains(&word.trim_end_matches(['.', ','])))
    {
        return None;
    }
    if given(first) {
        let ambiguous = AMBIGUOUS_GIVEN.contains(&first.as_str());
        let known_family = family(last) || all_capitals(raw_last);
        return match (ambiguous, known_family) {
            (false, true) => Some(0.85),
            (false, false) => Some(0.65),
            (true, true) => Some(0.6),
            (true, false) => Some(0.4),
        };
    }
    // Family name first, in capitals, as forms write it ("MORVAN Loïc",
    // "LE GOFF Éloïse").
    let (capitals, rest) = raw.split_at(raw.len() - 1);
    let capitals_are_a_name = capitals.iter().all(|word| all_capitals(word))
        && capitals.iter().map(|word| word.chars().count()).sum::<usize>() >= 4
        && !capitals
            .iter()
            .any(|word| ACRONYMS.contains(&folded(word).as_str()));
    if capitals_are_a_name
        && rest.iter().all(|word| !all_capitals(word))
        && given(last)
        && !AMBIGUOUS_GIVEN.contains(&last.as_str())
    {
        return Some(0.8);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_judged_by_the_lists_and_their_shape() {
        assert_eq!(known("Jeanne Martin"), Some(0.85));
        assert_eq!(known("Jean-Pierre DUPONT"), Some(0.85));
        assert_eq!(known("Emily Quernebrakian"), Some(0.65));
        assert_eq!(known("Housing Authority"), None);
        // Words and places that are given names too need a family name.
        assert_eq!(known("Grace Period"), Some(0.4));
        assert_eq!(known("Austin Energy"), Some(0.4));
        assert_eq!(known("Mark Johnson"), Some(0.6));
        // Surname first in capitals, as forms write it.
        assert_eq!(known("MORVAN Loïc"), Some(0.8));
        assert_eq!(known("DEPARTMENT Mark"), None);
        assert_eq!(known("In Washington"), None);
        assert_eq!(known("LE GOFF Éloïse"), Some(0.8));
        assert_eq!(known("DOB Sep"), None);
        assert_eq!(known("Eloïse Marchand"), Some(0.85));
        assert_eq!(known("Maple Street"), None);
        assert_eq!(known("Washington Blvd"), None);
        assert_eq!(after_title("Sir"), None);
        assert_eq!(after_title("Dupré"), Some(0.9));
        assert_eq!(after_title("Zyxwvutsky"), Some(0.75));
    }
}
