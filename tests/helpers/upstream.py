"""A scripted OpenAI-compatible Chat Completions server over real HTTP: the one stand-in in the
tests, for the upstream model (no model can be downloaded here).

    upstream = ScriptedUpstream()
    upstream.script([{"tool_calls": [{"name": "python", "arguments": {"code": "2 + 2"}}]},
                     {"text": "The answer is 4."}])
    ... point CODEINTERP_MODEL_BASE_URL at upstream.base_url ...

A turn is a dict with any of:
  "text": STR                       the assistant's text, streamed in a few pieces
  "tool_calls": [{"name", "arguments" (dict or str), "id" (optional)}]
  "error": STATUS, "message": STR   answer this HTTP status with an OpenAI error object
  "headers": {NAME: VALUE}          extra response headers (e.g. "retry-after-ms" with an error)
  "delay": SECONDS                  wait before answering
  "chunk_delay": SECONDS            wait between streamed chunks
  "finish_reason": STR              instead of "stop" / "tool_calls" (e.g. "length")
  "cut": True                       stream a part of the answer, then close the connection
  "usage": {...}                    the token counts reported
or a callable taking the request body and returning such a dict. With the script empty it
answers `fallback` (the text "done" unless changed; a turn or a callable).

Streamed answers follow OpenAI's chunks: a role delta, content deltas, tool-call deltas (index,
id, type and name first, then argument fragments), a last chunk with `finish_reason`, a usage
chunk with empty `choices` when `stream_options.include_usage`, then `data: [DONE]`.
"""

import json
import secrets
import string
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

MODELS = ["scripted-model"]
DEFAULT_USAGE = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
_ID_ALPHABET = string.ascii_letters + string.digits


def _random_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(24))


def _pieces(text: str, count: int = 3) -> list[str]:
    """The text cut in a few pieces, as a model streams it."""
    if len(text) < count:
        return [text] if text else []
    size = -(-len(text) // count)
    return [text[i:i + size] for i in range(0, len(text), size)]


class ScriptedUpstream:
    def __init__(self) -> None:
        self.requests: list[dict] = []  # every chat completion request body, in order
        self.headers: list[dict] = []  # the headers of those requests (lower-case names)
        self.models: list[str] | None = list(MODELS)  # None: GET /models answers 404
        self.fallback = {"text": "done"}  # the turn when the script is empty
        self.connections = 0  # TCP connections accepted
        self._turns: deque = deque()
        self._lock = threading.Lock()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # each streamed chunk goes out at once, as a model's would

            def log_message(self, *args) -> None:
                pass

            def setup(self) -> None:
                with upstream._lock:
                    upstream.connections += 1
                super().setup()

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models") and upstream.models is not None:
                    self._json(200, {"object": "list", "data": [
                        {"id": m, "object": "model", "created": 0, "owned_by": "tests"} for m in upstream.models]})
                else:
                    self._json(404, {"error": {"message": f"Unknown path {self.path}",
                                               "type": "invalid_request_error", "param": None, "code": None}})

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._json(404, {"error": {"message": f"Unknown path {self.path}",
                                               "type": "invalid_request_error", "param": None, "code": None}})
                    return
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    self._json(400, {"error": {"message": "The body is not JSON.",
                                               "type": "invalid_request_error", "param": None, "code": None}})
                    return
                turn = upstream._next(body, {k.lower(): v for k, v in self.headers.items()})
                if turn.get("delay"):
                    time.sleep(turn["delay"])
                if "error" in turn:
                    self._json(turn["error"], {"error": {"message": turn.get("message", "scripted failure"),
                                                         "type": "server_error" if turn["error"] >= 500
                                                         else "invalid_request_error",
                                                         "param": None, "code": None}},
                               turn.get("headers"))
                elif body.get("stream"):
                    self._stream(body, turn)
                else:
                    self._json(200, upstream._completion(body, turn))

            def _json(self, status: int, payload: dict, headers: dict | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, str(value))
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, body: dict, turn: dict) -> None:
                """Server-sent events in chunked encoding on a kept-alive connection, as OpenAI
                streams; a cut answer ends by closing the connection instead."""
                cut = turn.get("cut")
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream; charset=utf-8")
                self.send_header("Cache-Control", "no-cache")
                if cut:
                    self.send_header("Connection", "close")
                else:
                    self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                self.close_connection = bool(cut)
                chunks = list(upstream._chunks(body, turn))
                events = [f"data: {json.dumps(chunk)}\n\n".encode() for chunk in chunks]
                events = events[:max(1, len(events) // 2)] if cut else events + [b"data: [DONE]\n\n"]
                try:
                    for n, event in enumerate(events):
                        if n and turn.get("chunk_delay"):
                            time.sleep(turn["chunk_delay"])
                        self.wfile.write(event if cut else b"%x\r\n%s\r\n" % (len(event), event))
                        self.wfile.flush()
                    if not cut:
                        self.wfile.write(b"0\r\n\r\n")
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client went away (e.g. a cancelled run)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def script(self, turns: list) -> None:
        """Replace what is left of the script with these turns."""
        with self._lock:
            self._turns = deque(turns)

    def reset(self) -> None:
        """Forget the script, the recorded requests, and changes to the model list and fallback."""
        with self._lock:
            self._turns = deque()
            self.requests.clear()
            self.headers.clear()
            self.models = list(MODELS)
            self.fallback = {"text": "done"}

    @property
    def pending(self) -> int:
        """How many scripted turns have not been asked for yet."""
        with self._lock:
            return len(self._turns)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next(self, body: dict, headers: dict) -> dict:
        with self._lock:
            self.requests.append(body)
            self.headers.append(headers)
            turn = self._turns.popleft() if self._turns else self.fallback
        return turn(body) if callable(turn) else turn

    @staticmethod
    def _tool_calls(turn: dict) -> list[dict]:
        calls = []
        for call in turn.get("tool_calls") or []:
            arguments = call.get("arguments", {})
            calls.append({"id": call.get("id") or _random_id("call_"),
                          "name": call["name"],
                          "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments)})
        return calls

    @staticmethod
    def _finish_reason(turn: dict, calls: list) -> str:
        return turn.get("finish_reason") or ("tool_calls" if calls else "stop")

    def _completion(self, body: dict, turn: dict) -> dict:
        calls = self._tool_calls(turn)
        message: dict = {"role": "assistant", "content": turn.get("text"), "refusal": None}
        if calls:
            message["tool_calls"] = [{"id": c["id"], "type": "function",
                                      "function": {"name": c["name"], "arguments": c["arguments"]}} for c in calls]
        return {"id": _random_id("chatcmpl-"), "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model", ""), "system_fingerprint": None,
                "usage": turn.get("usage") or DEFAULT_USAGE,
                "choices": [{"index": 0, "message": message, "logprobs": None,
                             "finish_reason": self._finish_reason(turn, calls)}]}

    def _chunks(self, body: dict, turn: dict):
        with_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        base = {"id": _random_id("chatcmpl-"), "object": "chat.completion.chunk", "created": int(time.time()),
                "model": body.get("model", ""), "system_fingerprint": None}
        if with_usage:
            base["usage"] = None  # OpenAI sends usage: null on every chunk but the last

        def chunk(delta: dict, finish: str | None = None) -> dict:
            return dict(base, choices=[{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}])

        calls = self._tool_calls(turn)
        text = turn.get("text") or ""
        yield chunk({"role": "assistant", "content": "" if text or not calls else None, "refusal": None})
        for piece in _pieces(text):
            yield chunk({"content": piece})
        for index, call in enumerate(calls):
            yield chunk({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                                         "function": {"name": call["name"], "arguments": ""}}]})
            for piece in _pieces(call["arguments"]):
                yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
        yield chunk({}, self._finish_reason(turn, calls))
        if with_usage:
            yield dict(base, choices=[], usage=turn.get("usage") or DEFAULT_USAGE)


@pytest.fixture(scope="session")
def upstream():
    """One scripted upstream for the whole test session; each test scripts the turns it needs."""
    server = ScriptedUpstream()
    yield server
    server.close()
