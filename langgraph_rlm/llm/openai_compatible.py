"""OpenAI-compatible chat endpoints (`openai/...` models: OpenAI itself, or a local server at
--api-base), called directly over llm.http. Importing litellm takes seconds, longer than a whole
short question, and httpx takes three times the host's time a request that a batch of a thousand
sub-calls feels; every other provider still goes through litellm."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from langgraph_rlm.llm.http import HTTPError, ReplyTooLarge, post_json

LOCAL_SERVER_KEY = "no-key-needed"
REPLY_BYTES = 16 << 20
ROLES = {"system": "system", "human": "user", "ai": "assistant", "tool": "tool"}


class EndpointError(Exception):
    """An error reply, shaped as llm.retry reads errors: `status_code`, `response.headers`."""

    def __init__(self, status_code: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.response = SimpleNamespace(headers=headers or {})


def handles(model: str) -> bool:
    return model.startswith("openai/")


def endpoint(api_base: str | None) -> str:
    base = api_base or os.environ.get("OPENAI_BASE_URL") or os.environ.get("OPENAI_API_BASE")
    return (base or "https://api.openai.com/v1").rstrip("/")


def missing_key(api_base: str | None) -> list[str]:
    """OpenAI needs OPENAI_API_KEY; a server at --api-base is taken to need none."""
    return [] if api_base or os.environ.get("OPENAI_API_KEY", "").strip() else ["OPENAI_API_KEY"]


async def complete(
    model: str, messages: list[dict[str, str]], api_base: str | None, max_tokens: int | None = None
) -> tuple[str, int, int]:
    """The reply's text, and its prompt and completion tokens as the endpoint counted them."""
    body: dict[str, Any] = {"model": model.split("/", 1)[1], "messages": messages}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    key = os.environ.get("OPENAI_API_KEY", "").strip() or LOCAL_SERVER_KEY
    headers = {"Authorization": f"Bearer {key}"}
    url = f"{endpoint(api_base)}/chat/completions"
    try:
        reply = await post_json(url, body, headers, limit=REPLY_BYTES)
    except ReplyTooLarge:
        raise EndpointError(502, f"the endpoint's reply passed {REPLY_BYTES >> 20} MiB") from None
    except HTTPError as exc:
        raise EndpointError(502, f"{url}: {exc}") from None
    if reply.status >= 400:
        said = reply.body[:300].decode(errors="replace")
        raise EndpointError(reply.status, f"error {reply.status} from {url}: {said}", reply.headers)
    try:
        parsed = json.loads(reply.body)
        text = parsed["choices"][0]["message"]["content"] or ""
        usage = parsed.get("usage") or {}
        return str(text), int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise EndpointError(502, f"the endpoint's reply is not a chat completion ({exc!r})") from None


def as_openai(messages: list[BaseMessage]) -> list[dict[str, str]]:
    return [{"role": ROLES.get(m.type, "user"), "content": m.text} for m in messages]


class OpenAICompatibleChat(BaseChatModel):
    """The root model's chat model for `openai/...` strings; async only, as the graph is."""

    model: str
    api_base: str | None = None

    @property
    def _llm_type(self) -> str:
        return "openai-compatible"

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        raise NotImplementedError("the RLM calls its models asynchronously")

    async def _agenerate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        text, prompt, completion = await complete(
            self.model, as_openai(messages), self.api_base, kw.get("max_tokens")
        )
        usage = {"input_tokens": prompt, "output_tokens": completion, "total_tokens": prompt + completion}
        message = AIMessage(text, usage_metadata=usage, response_metadata={"model_name": self.model})
        return ChatResult(generations=[ChatGeneration(message=message)])
