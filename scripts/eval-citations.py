#!/usr/bin/env python3
"""Grounded answers of the default model over the demo handbook, through
the real server and the official `openai` package.

Starts `civitas serve` (qwen2.5-1.5b-instruct and all-minilm-l6-v2 from the
models folder, the demo collection loaded on first start), waits until the
handbook is ingested, then asks every question of
tests/knowledge/questions.jsonl with `civitas.collections` and reports:

- retrieval: the answer's passage is among the sources given to the model;
- citation: the answer cites at least one source, and a cited source holds
  the answer's evidence (accuracy), and the share of cited sources that do
  (precision); by the model alone, and with the citations Civitas adds by
  post-hoc attribution (`grounding.attributed`);
- citations of passages that were not retrieved: numbers outside the
  sources, removed by the server (must be 0 in the text the client gets);
- unanswerable questions: the answer says the documents do not answer.

Usage: CIVITAS_BIN=... MODELS=... python3 scripts/eval-citations.py [--limit N] [--out results.json]
"""

import argparse
import json
import os
import pathlib
import re
import socket
import subprocess
import tempfile
import time
import urllib.request

import openai

ROOT = pathlib.Path(__file__).resolve().parents[1]
KEY = "sk-eval-citations-key"
DECLINE = re.compile(
    r"(do(es)? not (answer|contain|provide|mention|say|specify|include|cover)|no (information|mention)|not (covered|mentioned|specified|provided)|cannot (answer|find)|"
    r"ne (répond|contien|mentionn|précis|fourni|permet)|aucune information|pas (d'information|mentionné|précisé|indiqué)|ne sont pas)",
    re.IGNORECASE,
)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(base, path):
    request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {KEY}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def normalize(text):
    return " ".join(text.split())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--out", default="")
    parser.add_argument("--model", default="qwen2.5-1.5b-instruct")
    parser.add_argument("--k", type=int, default=4)
    args = parser.parse_args()
    questions = [json.loads(line) for line in (ROOT / "tests/knowledge/questions.jsonl").read_text().splitlines() if line.strip()]
    if args.limit:
        questions = questions[: args.limit]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    data = tempfile.mkdtemp(prefix="civitas-eval-")
    env = {
        "PATH": os.environ["PATH"],
        "CIVITAS_DATA_DIR": data,
        "CIVITAS_BOOTSTRAP_KEY": KEY,
        "CIVITAS__MODELS__DIR": os.environ["MODELS"],
        "CIVITAS__MODELS__CHAT": args.model,
        "CIVITAS__MODELS__EMBEDDING": "all-minilm-l6-v2",
        "CIVITAS__MODELS__CONTEXT_LENGTH": "4096",
        "CIVITAS__MODELS__SLOTS": "1",
    }
    server = subprocess.Popen([os.environ["CIVITAS_BIN"], "serve", "--no-pull", "--listen", f"127.0.0.1:{port}"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(base + "/readyz", timeout=2)
                break
            except Exception:
                time.sleep(0.5)
        collection = None
        started = time.time()
        while True:
            collections = get(base, "/v1/collections")["data"]
            collection = next((c for c in collections if c["name"] == "Agency handbook (demo)"), None)
            if collection:
                documents = get(base, f"/v1/documents?collection={collection['id']}")["data"]
                if len(documents) == 10 and all(d["status"] in ("ready", "failed") for d in documents):
                    break
            if time.time() - started > 1800:
                raise SystemExit("the demo handbook was not ingested within 30 minutes")
            time.sleep(2)
        print(f"demo handbook ingested in {time.time() - started:.0f} s")
        client = openai.OpenAI(base_url=base + "/v1", api_key=KEY, timeout=600)
        results = []
        for question in questions:
            began = time.time()
            response = client.chat.completions.create(
                model=args.model,
                messages=[{"role": "user", "content": question["question"]}],
                max_tokens=200,
                temperature=0,
                extra_body={"civitas": {"collections": [collection["id"]], "k": args.k}},
            )
            extra = response.model_extra or {}
            sources = extra.get("sources", [])
            grounding = extra.get("grounding", {})
            text = response.choices[0].message.content or ""
            evidence = [normalize(e) for e in question.get("evidence", [])]
            expected = (question.get("document") or "").replace("/", "-")

            def supports(source):
                return source["document_name"] == expected and any(e in normalize(source["content"]) for e in evidence)

            cited = [n for n in grounding.get("cited", []) if 1 <= n <= len(sources)]
            # Citations Civitas added to sentences that cited nothing.
            attributed = [n for n in grounding.get("attributed", []) if 1 <= n <= len(sources)]
            every = sorted(set(cited) | set(attributed))
            outside = [int(n) for n in re.findall(r"\[(\d+)\]", text) if not 1 <= int(n) <= len(sources)]
            results.append({
                "id": question["id"],
                "lang": question["lang"],
                "unanswerable": bool(question.get("unanswerable")),
                "retrieved": any(supports(s) for s in sources),
                "cited": cited,
                "cited_supporting": [n for n in cited if supports(sources[n - 1])],
                "attributed": attributed,
                "every_cited": every,
                "every_supporting": [n for n in every if supports(sources[n - 1])],
                "removed_citations": grounding.get("invalid_citations", []),
                "outside_in_text": outside,
                "declined": bool(DECLINE.search(text)),
                "supported": grounding.get("supported"),
                "seconds": round(time.time() - began, 1),
                "answer": text,
            })
            r = results[-1]
            print(f"{r['id']}: retrieved={r['retrieved']} cited={r['cited']} attributed={r['attributed']} supporting={r['every_supporting']} declined={r['declined']} ({r['seconds']} s)", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
    answerable = [r for r in results if not r["unanswerable"]]
    unanswerable = [r for r in results if r["unanswerable"]]
    cited_total = sum(len(r["cited"]) for r in answerable)
    summary = {
        "model": args.model,
        "questions": len(results),
        "answerable": len(answerable),
        "retrieved": sum(r["retrieved"] for r in answerable) / max(1, len(answerable)),
        "answers_citing": sum(bool(r["cited"]) for r in answerable) / max(1, len(answerable)),
        "citation_accuracy": sum(bool(r["cited_supporting"]) for r in answerable) / max(1, len(answerable)),
        "citation_accuracy_when_retrieved": sum(bool(r["cited_supporting"]) for r in answerable if r["retrieved"]) / max(1, sum(r["retrieved"] for r in answerable)),
        "citation_precision": sum(len(r["cited_supporting"]) for r in answerable) / max(1, cited_total),
        "with_attribution_answers_citing": sum(bool(r["every_cited"]) for r in answerable) / max(1, len(answerable)),
        "with_attribution_citation_accuracy": sum(bool(r["every_supporting"]) for r in answerable) / max(1, len(answerable)),
        "with_attribution_citation_precision": sum(len(r["every_supporting"]) for r in answerable)
        / max(1, sum(len(r["every_cited"]) for r in answerable)),
        "citations_removed": sum(len(r["removed_citations"]) for r in results),
        "citations_outside_in_text": sum(len(r["outside_in_text"]) for r in results),
        "unanswerable": len(unanswerable),
        "unanswerable_declined": sum(r["declined"] for r in unanswerable) / max(1, len(unanswerable)),
        "answerable_declined": sum(r["declined"] for r in answerable) / max(1, len(answerable)),
        "median_seconds": sorted(r["seconds"] for r in results)[len(results) // 2] if results else 0,
    }
    print(json.dumps(summary, indent=2))
    if args.out:
        pathlib.Path(args.out).write_text(json.dumps({"summary": summary, "results": results}, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
