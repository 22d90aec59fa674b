//! Person names: a gazetteer of frequent given names and family names of
//! the United States and France (a list written for the project from the
//! most common ones, not copied from a registry), and the judges that
//! score a candidate name.

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

static GIVEN_NAMES: LazyLock<HashSet<&'static str>> = LazyLock::new(|| GIVEN.split_whitespace().collect());
static FAMILY_NAMES: LazyLock<HashSet<&'static str>> = LazyLock::new(|| FAMILY.split_whitespace().collect());

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
    let known = words
        .iter()
        .any(|word| GIVEN_NAMES.contains(word.as_str()) || FAMILY_NAMES.contains(word.as_str()));
    Some(if known { 0.9 } else { 0.75 })
}

/// Two or three capitalized words: a known given name, then a known family
/// name or one in capitals (as French forms write it) scores high; a known
/// given name before an unknown capitalized word scores below the default
/// threshold unless a context word is near.
pub fn known(value: &str) -> Option<f32> {
    let words = words(value);
    let first = words.first()?;
    let first_given = first.split('-').all(|part| GIVEN_NAMES.contains(part));
    if !first_given {
        return None;
    }
    let raw_last = value.split_whitespace().last()?;
    let last = words.last()?;
    if FAMILY_NAMES.contains(last.as_str()) || all_capitals(raw_last) {
        Some(0.8)
    } else {
        Some(0.45)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_judged_by_the_lists_and_their_shape() {
        assert_eq!(known("Jeanne Martin"), Some(0.8));
        assert_eq!(known("Jean-Pierre DUPONT"), Some(0.8));
        assert_eq!(known("Emily Zabriskie"), Some(0.45));
        assert_eq!(known("Housing Authority"), None);
        assert_eq!(after_title("Sir"), None);
        assert_eq!(after_title("Dupré"), Some(0.9));
        assert_eq!(after_title("Okonkwo"), Some(0.75));
    }
}
