"""The upstream model client: any OpenAI-compatible Chat Completions endpoint (OpenAI, vLLM,
Ollama, llama.cpp's server, LiteLLM), always streamed, with tool calls assembled by index."""

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

import aiohttp
import orjson
from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL

log = logging.getLogger(__name__)

RETRY_STATUSES = {408, 409, 429, 500, 502, 503, 504}
RETRY_DELAYS = (0.5, 2.0)  # seconds before the second and third attempts
MAX_RETRY_AFTER = 10.0  # the longest `Retry-After` we wait for before retrying
JSON_CONTENT = {"Content-Type": "application/json"}
IDLE_CONNECTION_SECONDS = 4.0


@dataclass
class TextDelta:
    text: str


@dataclass
class ToolCallDelta:
    """A piece of a tool call: `arguments` holds only the text new in this chunk."""

    index: int
    id: str | None
    name: str | None
    arguments: str


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str


@dataclass
class Completion:
    text: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    usage: dict | None = None


class UpstreamError(Exception):
    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code

    @property
    def rate_limited(self) -> bool:
        return self.status_code == 429


def _error_message(status: int, body: bytes) -> str:
    try:
        detail = orjson.loads(body)
        if isinstance(detail, dict):
            error = detail.get("error", detail)
            detail = error.get("message", error) if isinstance(error, dict) else error
    except orjson.JSONDecodeError:
        detail = body.decode("utf-8", "replace")[:500]
    return f"The model endpoint answered {status}: {detail}"


def _retry_delay(headers: Mapping[str, str] | None, attempt: int) -> float:
    """The wait before the next attempt: the endpoint's `Retry-After` (from the answer's headers)
    when it gives a short one."""
    if headers is not None:
        for header, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
            try:
                wait = float(headers[header]) * scale
            except (KeyError, ValueError):
                continue
            if 0 <= wait <= MAX_RETRY_AFTER:
                return wait
    return RETRY_DELAYS[attempt]


class ChatClient:
    """Requests go through one aiohttp session (its connections are kept and reused), made on the
    loop of the first request."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = 600.0) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        # HTTP(S)_PROXY and NO_PROXY as other clients read them, once (aiohttp's trust_env reads
        # them, and ~/.netrc, in a thread on every request)
        try:
            self._proxy, self._proxy_auth = get_env_proxy_for_url(URL(self.base_url))
        except LookupError:
            self._proxy, self._proxy_auth = None, None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            # An idle connection is dropped before the endpoint would drop it (uvicorn, under vLLM
            # and others, after 5 s), so a request is seldom sent on one being closed (then retried).
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(keepalive_timeout=IDLE_CONNECTION_SECONDS),
                headers=self.headers, proxy=self._proxy, proxy_auth=self._proxy_auth,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=min(self.timeout, 10.0),
                                              sock_read=self.timeout))
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def list_models(self) -> set[str] | None:
        """The model ids the endpoint lists, or None when it does not list them."""
        try:
            async with self._http().get(self.base_url + "models") as response:
                if response.status != 200:
                    return None
                body = await response.read()
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            raise UpstreamError(f"Could not reach the model endpoint: {error!r}") from error
        try:
            return {m["id"] for m in orjson.loads(body).get("data", [])}
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            return None

    async def stream(self, body: dict) -> AsyncIterator[TextDelta | ToolCallDelta | Completion]:
        """Ask the model, yielding deltas as they arrive and the assembled `Completion` last.

        Connection failures and 408/409/429/5xx answers are retried (twice, after a short wait)
        as long as nothing was yielded yet; then they raise `UpstreamError`."""
        request = dict(body, stream=True, stream_options={**(body.get("stream_options") or {}),
                                                          "include_usage": True})
        content = orjson.dumps(request)
        attempts = len(RETRY_DELAYS) + 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            started = False
            try:
                async with self._http().post(self.base_url + "chat/completions", data=content,
                                             headers=JSON_CONTENT) as response:
                    if response.status != 200:
                        message = _error_message(response.status, await response.read())
                        if response.status in RETRY_STATUSES and not last:
                            log.warning("%s; retrying", message)
                            await asyncio.sleep(_retry_delay(response.headers, attempt))
                            continue
                        raise UpstreamError(message, response.status)
                    async for event in _parse(response):
                        started = True
                        yield event
                    return
            except asyncio.TimeoutError as error:  # aiohttp's connect and read timeouts are such errors
                if isinstance(error, aiohttp.ConnectionTimeoutError) and not last:
                    await asyncio.sleep(RETRY_DELAYS[attempt])
                    continue
                raise UpstreamError(f"The model endpoint did not answer within {self.timeout:g} seconds.") from error
            except aiohttp.ClientError as error:
                if not started and not last:
                    log.warning("model endpoint connection failed (%r); retrying", error)
                    await asyncio.sleep(RETRY_DELAYS[attempt])
                    continue
                if isinstance(error, aiohttp.ClientConnectorError):
                    raise UpstreamError(f"Could not reach the model endpoint: {error!r}") from error
                raise UpstreamError(f"The connection to the model endpoint failed: {error!r}") from error


async def _lines(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """The body's lines as they arrive (without their line ends), however long."""
    pending = bytearray()
    async for chunk in response.content.iter_any():
        pending += chunk
        if b"\n" not in chunk:
            continue
        *lines, rest = pending.split(b"\n")
        pending = bytearray(rest)
        for line in lines:
            yield line.rstrip(b"\r")
    if pending:
        yield bytes(pending)


async def _parse(response: aiohttp.ClientResponse) -> AsyncIterator[TextDelta | ToolCallDelta | Completion]:
    text: list[str] = []
    calls: dict[int, ToolCall] = {}
    finish_reason = None
    usage = None
    done = False
    async for line in _lines(response):
        # After [DONE] the body is read to its end, so that the connection can be used again.
        if done or not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            done = True
            continue
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError as error:
            raise UpstreamError("The model endpoint sent a malformed event: "
                                f"{data[:200].decode('utf-8', 'replace')}") from error
        if chunk.get("error"):
            error = chunk["error"]
            raise UpstreamError(f"The model endpoint failed: {error.get('message', error) if isinstance(error, dict) else error}")
        usage = chunk.get("usage") or usage
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            if delta.get("content"):
                text.append(delta["content"])
                yield TextDelta(delta["content"])
            for call in delta.get("tool_calls") or []:
                index = call.get("index", 0)
                function = call.get("function") or {}
                known = calls.setdefault(index, ToolCall(id="", name="", arguments=""))
                known.id = call.get("id") or known.id
                known.name += function.get("name") or ""
                arguments = function.get("arguments") or ""
                known.arguments += arguments
                yield ToolCallDelta(index=index, id=call.get("id"), name=function.get("name"), arguments=arguments)
            finish_reason = choice.get("finish_reason") or finish_reason
    if not done and finish_reason is None:
        raise UpstreamError("The model endpoint closed the stream before the answer was complete.")
    tool_calls = [calls[i] for i in sorted(calls)]
    for n, call in enumerate(tool_calls):
        call.id = call.id or f"call_{n}"
    yield Completion(text="".join(text), tool_calls=tool_calls, finish_reason=finish_reason, usage=usage)
