"""Starts the real `civitas` binary for the OpenAI compatibility suite.

Environment:
  CIVITAS_BIN             path of the built binary (required)
  CIVITAS_TEST_MODELS_DIR folder with the models pulled (required)
  CIVITAS_TEST_DEFAULT_MODEL=1  also run the tests on the default model
"""

import os
import socket
import subprocess
import tempfile
import time
import urllib.request

import pytest

API_KEY = "sk-compat-test-key"


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, model, extra_env=None):
        binary = os.environ.get("CIVITAS_BIN")
        models_dir = os.environ.get("CIVITAS_TEST_MODELS_DIR")
        if not binary or not models_dir:
            pytest.skip("CIVITAS_BIN and CIVITAS_TEST_MODELS_DIR are needed")
        self.model = model
        self.data_dir = tempfile.TemporaryDirectory()
        self.port = _free_port()
        env = {
            "PATH": os.environ.get("PATH", ""),
            "CIVITAS_DATA_DIR": self.data_dir.name,
            "CIVITAS_BOOTSTRAP_KEY": API_KEY,
            "CIVITAS__MODELS__DIR": models_dir,
            "CIVITAS__MODELS__CHAT": model,
            "CIVITAS__MODELS__SLOTS": "2",
            "CIVITAS__MODELS__QUEUE_DEPTH": "4",
            "CIVITAS__MODELS__MAX_OUTPUT_TOKENS": "512",
            "CIVITAS__SERVER__MAX_BODY_BYTES": "262144",
            "CIVITAS__SERVER__SHUTDOWN_GRACE_SECONDS": "2",
            # The demo handbook would keep the ingestion workers busy.
            "CIVITAS__KNOWLEDGE__DEMO_COLLECTION": "false",
        }
        env.update(extra_env or {})
        self.log = open(os.path.join(self.data_dir.name, "server.log"), "wb")
        self.process = subprocess.Popen(
            [binary, "serve", "--no-pull", "--listen", f"127.0.0.1:{self.port}"],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.base_url = f"http://127.0.0.1:{self.port}"
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"civitas exited early:\n{self.output()}")
            try:
                with urllib.request.urlopen(self.base_url + "/readyz", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"civitas did not become ready:\n{self.output()}")

    def output(self):
        self.log.flush()
        with open(self.log.name, "rb") as handle:
            return handle.read().decode("utf-8", "replace")

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()
        self.data_dir.cleanup()


@pytest.fixture(scope="session")
def tiny_server():
    server = Server("smollm2-135m-instruct")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def client(tiny_server):
    from openai import OpenAI

    return OpenAI(base_url=tiny_server.base_url + "/v1", api_key=API_KEY, max_retries=0)


@pytest.fixture(scope="session")
def default_server():
    if os.environ.get("CIVITAS_TEST_DEFAULT_MODEL") != "1":
        pytest.skip("set CIVITAS_TEST_DEFAULT_MODEL=1 to run on the default model")
    server = Server("qwen2.5-1.5b-instruct")
    yield server
    server.stop()
