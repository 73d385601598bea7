"""The configured upstream model endpoint, as both engines use it: its client, and whether it
serves the model a request names."""

import time

from codeinterp.config import Settings
from codeinterp.store.errors import InvalidRequest
from codeinterp.upstream.client import ChatClient, UpstreamError

MODEL_LIST_TTL_SECONDS = 60.0


class UpstreamModel:
    def __init__(self, settings: Settings) -> None:
        self.client: ChatClient | None = None  # None when no model is configured
        if settings.model_base_url:
            self.client = ChatClient(settings.model_base_url, settings.model_api_key, settings.model_timeout_seconds)
        self._models: tuple[float, set[str] | None] | None = None  # (when asked, what the endpoint listed)

    async def check_model(self, model: str) -> None:
        """InvalidRequest unless a model is configured and serves `model`."""
        await self.refresh()
        self.check(model)

    async def refresh(self) -> None:
        """Ask the endpoint which models it serves when the answer kept is old (call it outside
        any database session: the endpoint may be slow). InvalidRequest when no model is configured."""
        if self.client is None:
            raise InvalidRequest("No model is configured on this server: set CODEINTERP_MODEL_BASE_URL "
                                 "to an OpenAI-compatible Chat Completions endpoint.", param="model")
        if self._models is None or time.monotonic() - self._models[0] > MODEL_LIST_TTL_SECONDS:
            try:
                models = await self.client.list_models()
            except UpstreamError:
                models = None
            self._models = (time.monotonic(), models)

    def check(self, model: str) -> None:
        """After `refresh`: InvalidRequest unless the endpoint serves `model` (as far as it says:
        an endpoint that lists no models is taken at its word for any)."""
        models = self._models[1] if self._models else None
        if models and model not in models:
            raise InvalidRequest(f"The model '{model}' does not exist or you do not have access to it.",
                                 param="model")

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.aclose()
