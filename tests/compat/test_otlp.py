"""OpenTelemetry trace export: the real binary sends OTLP/HTTP protobuf to a
collector endpoint, decoded here with the official `opentelemetry-proto`
definitions. Spans carry the route, status and request id, continue the
caller's W3C trace, and never carry content, keys or paths with ids."""

import http.server
import threading
import time

import pytest
from openai import OpenAI

from conftest import API_KEY, Server

SECRET = "the witness in case 7731 lives at 12 Rue des Lilas"


class Collector(http.server.ThreadingHTTPServer):
    """Receives OTLP/HTTP trace exports and keeps them decoded."""

    def __init__(self):
        self.requests = []
        self.raw = []
        self.content_types = []
        collector = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                collector.content_types.append(self.headers.get("content-type"))
                collector.raw.append(body)
                # Fails loudly (500) on anything that is not a valid message.
                message = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
                collector.requests.append((self.path, message))
                answer = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def spans(self):
        found = []
        for _, message in self.requests:
            for resource_spans in message.resource_spans:
                resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        found.append((resource, scope_spans.scope, span))
        return found


@pytest.fixture(scope="module")
def traced():
    pytest.importorskip("opentelemetry.proto")
    collector = Collector()
    port = collector.server_address[1]
    server = Server(
        "smollm2-135m-instruct",
        {"CIVITAS__TELEMETRY__OTLP_ENDPOINT": f"http://127.0.0.1:{port}/v1/traces"},
    )
    yield server, collector
    server.stop()
    collector.shutdown()


def attributes(span):
    values = {}
    for pair in span.attributes:
        kind = pair.value.WhichOneof("value")
        values[pair.key] = getattr(pair.value, kind)
    return values


def test_spans_reach_the_collector_without_content(traced):
    server, collector = traced
    client = OpenAI(base_url=server.base_url + "/v1", api_key=API_KEY, max_retries=0)
    parent_trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    parent_span = "00f067aa0ba902b7"
    raw = client.chat.completions.with_raw_response.create(
        model=server.model,
        messages=[{"role": "user", "content": SECRET}],
        max_tokens=4,
        extra_headers={"traceparent": f"00-{parent_trace}-{parent_span}-01"},
    )
    request_id = raw.headers["x-request-id"]
    with pytest.raises(Exception):
        client.models.retrieve("no-such-model")

    deadline = time.time() + 20
    while time.time() < deadline:
        seen = [attributes(span) for _, _, span in collector.spans()]
        if any(values.get("civitas.request_id") == request_id for values in seen) and any(
            values.get("http.response.status_code") == 404 for values in seen
        ):
            break
        time.sleep(0.2)
    spans = collector.spans()
    assert collector.requests, "nothing reached the collector"
    assert all(path == "/v1/traces" for path, _ in collector.requests)
    assert set(collector.content_types) == {"application/x-protobuf"}

    resource, scope, chat = next(
        (resource, scope, span)
        for resource, scope, span in spans
        if attributes(span).get("civitas.request_id") == request_id
    )
    assert resource["service.name"] == "civitas"
    assert resource["service.instance.id"]
    assert scope.name == "civitas"
    # The caller's trace continues: same trace id, its span as parent.
    assert chat.trace_id.hex() == parent_trace
    assert chat.parent_span_id.hex() == parent_span
    assert len(chat.span_id) == 8 and chat.span_id != bytes(8)
    assert chat.name == "POST /v1/chat/completions"
    assert chat.kind == chat.SPAN_KIND_SERVER
    assert chat.end_time_unix_nano >= chat.start_time_unix_nano > 0
    values = attributes(chat)
    assert values["http.request.method"] == "POST"
    assert values["http.route"] == "/v1/chat/completions"
    assert values["http.response.status_code"] == 200

    # A request without a traceparent starts its own trace; a 404 is not an
    # error of the server, and its path (with the id) is not in the span.
    missing = [
        span
        for _, _, span in spans
        if attributes(span).get("http.response.status_code") == 404
    ]
    assert missing, [attributes(span) for _, _, span in spans]
    assert missing[0].trace_id.hex() != parent_trace
    assert not missing[0].parent_span_id
    assert missing[0].status.code != missing[0].status.STATUS_CODE_ERROR
    assert attributes(missing[0])["http.route"] == "/v1/models/{id}"

    # Nothing said, no key, no id from a path ever leaves in a span.
    everything = b"".join(collector.raw)
    assert SECRET.encode() not in everything
    assert b"Rue des Lilas" not in everything
    assert API_KEY.encode() not in everything
    assert b"no-such-model" not in everything
