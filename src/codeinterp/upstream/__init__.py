"""The upstream model: an OpenAI-compatible Chat Completions client (see `client`)."""
