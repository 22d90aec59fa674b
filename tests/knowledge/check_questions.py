"""Checks the labelled questions of the demo handbook.

Every line of tests/knowledge/questions.jsonl must be a JSON object with a
unique id; an answerable question names a document of the demo collection
(crates/civitas-knowledge/demo/) and one to three evidence strings, each
of which must occur character for character in that document; an
unanswerable question has no answer, no evidence and no document. Prints a
summary and exits with status 1 if anything is wrong.

    python3 tests/knowledge/check_questions.py
"""

import argparse
import collections
import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
QUESTIONS = ROOT / "tests" / "knowledge" / "questions.jsonl"
DEMO = ROOT / "crates" / "civitas-knowledge" / "demo"

LANGS = ("en", "fr")
# The least the set must hold, per language.
MIN_ANSWERABLE = 40
MIN_UNANSWERABLE = 5

ID_PATTERN = re.compile(r"^hb-(en|fr)-\d{3}$")
KEYS = {"id", "corpus", "lang", "question", "answer", "evidence", "document"}
OPTIONAL_KEYS = {"unanswerable"}


def check_evidence(text, where, problems, document_text):
    if not isinstance(text, str) or not text.strip():
        problems.append(f"{where}: evidence must be a non-empty string")
        return
    words = len(text.split())
    if not 3 <= words <= 12:
        problems.append(f"{where}: evidence has {words} words, expected 3 to 12: {text!r}")
    if "\n" in text or "\r" in text:
        problems.append(f"{where}: evidence spans a line break: {text!r}")
    for markup in ("**", "|", "`"):
        if markup in text:
            problems.append(f"{where}: evidence contains Markdown markup {markup!r}: {text!r}")
    if text != text.strip():
        problems.append(f"{where}: evidence has leading or trailing spaces: {text!r}")
    if document_text is None:
        return
    count = document_text.count(text)
    if count == 0:
        problems.append(f"{where}: evidence not found in the document: {text!r}")
    elif count > 1:
        problems.append(f"{where}: evidence occurs {count} times in the document, "
                        f"so it does not point at one place: {text!r}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=pathlib.Path, default=QUESTIONS)
    parser.add_argument("--demo", type=pathlib.Path, default=DEMO)
    args = parser.parse_args()

    problems = []
    documents = {}
    for path in sorted(args.demo.glob("*/*.md")):
        documents[path.relative_to(args.demo).as_posix()] = path.read_text(encoding="utf-8")
    if not documents:
        problems.append(f"no Markdown documents found under {args.demo}")

    seen_ids = set()
    seen_questions = set()
    answerable = collections.Counter()
    unanswerable = collections.Counter()
    per_document = collections.Counter()
    evidence_total = 0

    try:
        lines = args.questions.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        print(f"cannot read {args.questions}: {error}")
        return 1

    for number, line in enumerate(lines, start=1):
        where = f"line {number}"
        if not line.strip():
            problems.append(f"{where}: empty line")
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as error:
            problems.append(f"{where}: not valid JSON: {error}")
            continue
        if not isinstance(item, dict):
            problems.append(f"{where}: not a JSON object")
            continue

        qid = item.get("id")
        if isinstance(qid, str):
            where = f"line {number} ({qid})"
        missing = KEYS - item.keys()
        if missing:
            problems.append(f"{where}: missing keys {sorted(missing)}")
            continue
        extra = item.keys() - KEYS - OPTIONAL_KEYS
        if extra:
            problems.append(f"{where}: unexpected keys {sorted(extra)}")

        match = ID_PATTERN.match(qid) if isinstance(qid, str) else None
        if not match:
            problems.append(f"{where}: id must look like hb-en-001 or hb-fr-001")
        elif qid in seen_ids:
            problems.append(f"{where}: duplicate id")
        seen_ids.add(qid)

        lang = item["lang"]
        if lang not in LANGS:
            problems.append(f"{where}: lang must be one of {LANGS}, not {lang!r}")
        elif match and match.group(1) != lang:
            problems.append(f"{where}: the id says {match.group(1)!r} but lang is {lang!r}")
        if item["corpus"] != "handbook":
            problems.append(f"{where}: corpus must be 'handbook', not {item['corpus']!r}")

        question = item["question"]
        if not isinstance(question, str) or not question.strip():
            problems.append(f"{where}: question must be a non-empty string")
        elif question in seen_questions:
            problems.append(f"{where}: the same question appears twice")
        else:
            seen_questions.add(question)

        flag = item.get("unanswerable", False)
        if not isinstance(flag, bool):
            problems.append(f"{where}: unanswerable must be true or false")
            continue

        if flag:
            unanswerable[lang] += 1
            if item["answer"] is not None:
                problems.append(f"{where}: an unanswerable question must have answer null")
            if item["evidence"] != []:
                problems.append(f"{where}: an unanswerable question must have no evidence")
            if item["document"] is not None:
                problems.append(f"{where}: an unanswerable question must have document null")
            continue

        answerable[lang] += 1
        if not isinstance(item["answer"], str) or not item["answer"].strip():
            problems.append(f"{where}: answer must be a non-empty string "
                            "(or set unanswerable to true)")
        document = item["document"]
        document_text = None
        if not isinstance(document, str) or document not in documents:
            problems.append(f"{where}: document {document!r} is not in the demo collection")
        else:
            document_text = documents[document]
            per_document[document] += 1
            if lang in LANGS and not document.startswith(lang + "/"):
                problems.append(f"{where}: a {lang!r} question points at {document!r}")
        evidence = item["evidence"]
        if not isinstance(evidence, list) or not 1 <= len(evidence) <= 3:
            problems.append(f"{where}: evidence must be a list of 1 to 3 strings")
            continue
        if len(set(evidence)) != len(evidence):
            problems.append(f"{where}: the same evidence string is listed twice")
        for text in evidence:
            evidence_total += 1
            check_evidence(text, where, problems, document_text)

    for lang in LANGS:
        if answerable[lang] < MIN_ANSWERABLE:
            problems.append(f"{lang}: {answerable[lang]} answerable questions, "
                            f"expected at least {MIN_ANSWERABLE}")
        if unanswerable[lang] < MIN_UNANSWERABLE:
            problems.append(f"{lang}: {unanswerable[lang]} unanswerable questions, "
                            f"expected at least {MIN_UNANSWERABLE}")
    for document in documents:
        if per_document[document] == 0:
            problems.append(f"{document}: no question points at this document")

    print(f"{args.questions.name}: {len(lines)} lines, {len(seen_ids)} ids, "
          f"{evidence_total} evidence strings")
    for lang in LANGS:
        print(f"  {lang}: {answerable[lang]} answerable, {unanswerable[lang]} unanswerable")
    for document in sorted(documents):
        print(f"  {document}: {per_document[document]} questions")

    if problems:
        print(f"{len(problems)} problem(s):")
        for problem in problems:
            print(f"  - {problem}")
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
