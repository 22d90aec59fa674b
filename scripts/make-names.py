"""Writes the name lists of the detection engine's person recognizer.

    python3 scripts/make-names.py

Fetches two packages from PyPI with `pip download` (nothing is installed):
`names` 0.3.0 (MIT), which carries the 1990 United States census lists of
given names and surnames (public-domain data), and `faker` (MIT), whose
person providers list given names and surnames for many countries. Keeps
names of Latin script, lower-cased, and writes

    crates/civitas-protect/data/given_names.txt
    crates/civitas-protect/data/family_names.txt

one name per line after a header saying where they come from. The engine
embeds both files; rerun this script to refresh them.
"""

import importlib
import pathlib
import subprocess
import sys
import tarfile
import tempfile
import unicodedata
import zipfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "crates" / "civitas-protect" / "data"
FAKER = "faker==40.63.0"
NAMES = "names==0.3.0"
# Countries whose people an agency writes to most: the Americas, Europe,
# West Africa, South Asia.
LOCALES = [
    "en_US", "en_GB", "en_IE", "en_IN", "en_NG", "en_CA", "en_AU", "fr_FR", "fr_CA", "fr_BE",
    "fr_CH", "es_ES", "es_MX", "es_CO", "it_IT", "de_DE", "nl_NL", "pt_PT", "pt_BR", "pl_PL",
    "yo_NG", "ig_NG", "ha_NG", "tw_GH", "en_KE", "sw", "tr_TR", "ro_RO", "cs_CZ", "sv_SE",
    "da_DK", "no_NO", "fi_FI", "hr_HR", "sk_SK", "sl_SI", "hu_HU", "vi_VN", "fil_PH", "id_ID",
]
# Census surnames kept, most frequent first (about 90 % of people).
SURNAMES_KEPT = 30000
# Census given names rarer than this share of people (in %) are left out:
# the tail holds ordinary words.
GIVEN_MIN_PERCENT = 0.002


def latin(name):
    """The name in lower case if it is written in Latin letters."""
    name = name.strip().lower()
    if len(name) < 2 or not all(c.isalpha() or c in "-'’" for c in name):
        return None
    for char in name:
        if char.isalpha() and "LATIN" not in unicodedata.name(char, ""):
            return None
    return name


def fetch(spec, into):
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", into, spec],
        check=True,
    )


def main():
    given, family = set(), set()
    with tempfile.TemporaryDirectory() as work:
        fetch(NAMES, work)
        fetch(FAKER, work)
        folder = pathlib.Path(work)
        with tarfile.open(next(folder.glob("names-*.tar.gz"))) as archive:
            for member in archive.getmembers():
                base = member.name.rsplit("/", 1)[-1]
                if not base.startswith("dist."):
                    continue
                lines = archive.extractfile(member).read().decode().splitlines()
                if base == "dist.all.last":
                    for line in lines[:SURNAMES_KEPT]:
                        if (name := latin(line.split()[0])):
                            family.add(name)
                else:
                    for line in lines:
                        word, percent = line.split()[:2]
                        if float(percent) >= GIVEN_MIN_PERCENT and (name := latin(word)):
                            given.add(name)
        with zipfile.ZipFile(next(folder.glob("faker-*.whl"))) as wheel:
            wheel.extractall(folder / "faker")
        sys.path.insert(0, str(folder / "faker"))
        for locale in LOCALES:
            try:
                provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
            except ImportError:
                continue
            for attribute in ("first_names", "first_names_male", "first_names_female", "first_names_nonbinary"):
                for name in getattr(provider, attribute, None) or ():
                    if (name := latin(name)):
                        given.add(name)
            for attribute in ("last_names", "last_names_male", "last_names_female"):
                for name in getattr(provider, attribute, None) or ():
                    if (name := latin(name)):
                        family.add(name)
    OUT.mkdir(parents=True, exist_ok=True)
    header = (
        "# {what}, lower case, one per line: written by scripts/make-names.py from\n"
        "# the 1990 United States census lists (public domain, as carried by the\n"
        "# `names` package, MIT) and the person providers of `faker` (MIT).\n"
    )
    for file, what, names in [
        ("given_names.txt", "Given names", given),
        ("family_names.txt", "Family names", family),
    ]:
        text = header.format(what=what) + "\n".join(sorted(names)) + "\n"
        (OUT / file).write_text(text, encoding="utf-8")
        print(f"{file}: {len(names)} names", file=sys.stderr)


if __name__ == "__main__":
    main()
