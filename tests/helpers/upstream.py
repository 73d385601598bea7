"""A scripted OpenAI-compatible Chat Completions server over real HTTP: the one stand-in in the
tests, for the upstream model (no model can be downloaded here).

    upstream = ScriptedUpstream()
    upstream.script([{"tool_calls": [{"name": "python", "arguments": {"code": "2 + 2"}}]},
                     {"text": "The answer is 4."}])
    ... point CODEINTERP_MODEL_BASE_URL at upstream.base_url ...

A turn is `{"text": ...}`, `{"tool_calls": [{"name", "arguments"}]}`, `{"error": STATUS, "message": ...}`,
optionally with `"delay": SECONDS` (before answering) and `"usage": {...}`; or a callable taking
the request body and returning a turn. With the script empty it answers the text "done".
"""

import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODELS = ["scripted-model"]


def _pieces(text: str, count: int = 3) -> list[str]:
    """The text cut in a few pieces, as a model streams it."""
    if len(text) < count:
        return [text] if text else []
    size = -(-len(text) // count)
    return [text[i:i + size] for i in range(0, len(text), size)]


class ScriptedUpstream:
    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.models: list[str] | None = list(MODELS)
        self._turns: deque = deque()
        self._lock = threading.Lock()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models") and upstream.models is not None:
                    self._json(200, {"object": "list", "data": [
                        {"id": m, "object": "model", "created": 0, "owned_by": "tests"} for m in upstream.models]})
                else:
                    self._json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})
                    return
                turn = upstream._next(body)
                if turn.get("delay"):
                    time.sleep(turn["delay"])
                if "error" in turn:
                    self._json(turn["error"], {"error": {"message": turn.get("message", "scripted failure"),
                                                         "type": "server_error", "code": None}})
                elif body.get("stream"):
                    self._stream(body, turn)
                else:
                    self._json(200, upstream._completion(body, turn))

            def _json(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, body: dict, turn: dict) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                for chunk in upstream._chunks(body, turn):
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def script(self, turns: list) -> None:
        """Replace what is left of the script with these turns."""
        with self._lock:
            self._turns = deque(turns)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next(self, body: dict) -> dict:
        with self._lock:
            self.requests.append(body)
            turn = self._turns.popleft() if self._turns else {"text": "done"}
        return turn(body) if callable(turn) else turn

    @staticmethod
    def _tool_calls(turn: dict) -> list[dict]:
        calls = []
        for n, call in enumerate(turn.get("tool_calls") or []):
            arguments = call.get("arguments", {})
            calls.append({"id": call.get("id") or f"call_{n}_{int(time.time_ns() % 10**9)}",
                          "name": call["name"],
                          "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments)})
        return calls

    @staticmethod
    def _usage(turn: dict) -> dict:
        return turn.get("usage") or {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}

    def _completion(self, body: dict, turn: dict) -> dict:
        calls = self._tool_calls(turn)
        message: dict = {"role": "assistant", "content": turn.get("text")}
        if calls:
            message["tool_calls"] = [{"id": c["id"], "type": "function",
                                      "function": {"name": c["name"], "arguments": c["arguments"]}} for c in calls]
        return {"id": "chatcmpl-scripted", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model", ""), "usage": self._usage(turn),
                "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}]}

    def _chunks(self, body: dict, turn: dict):
        base = {"id": "chatcmpl-scripted", "object": "chat.completion.chunk", "created": int(time.time()),
                "model": body.get("model", "")}

        def chunk(delta: dict, finish: str | None = None) -> dict:
            return dict(base, choices=[{"index": 0, "delta": delta, "finish_reason": finish}])

        yield chunk({"role": "assistant", "content": ""})
        for piece in _pieces(turn.get("text") or ""):
            yield chunk({"content": piece})
        calls = self._tool_calls(turn)
        for index, call in enumerate(calls):
            yield chunk({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                                         "function": {"name": call["name"], "arguments": ""}}]})
            for piece in _pieces(call["arguments"]):
                yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
        yield chunk({}, "tool_calls" if calls else "stop")
        if (body.get("stream_options") or {}).get("include_usage"):
            yield dict(base, choices=[], usage=self._usage(turn))
