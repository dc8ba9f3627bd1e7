"""OpenAI-compatible chat endpoints (`openai/...` models: OpenAI itself, or a local server at
--api-base), called directly with aiohttp. Importing litellm takes seconds, longer than a whole
short question, and aiohttp takes a third of httpx's time a request, which a batch of a thousand
sub-calls feels; every other provider still goes through litellm."""

from __future__ import annotations

import asyncio
import json
import os
import weakref
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import aiohttp
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

LOCAL_SERVER_KEY = "no-key-needed"
REPLY_BYTES = 16 << 20
TIMEOUT = aiohttp.ClientTimeout(total=600.0, connect=10.0)
ROLES = {"system": "system", "human": "user", "ai": "assistant", "tool": "tool"}

_sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession] = (
    weakref.WeakKeyDictionary()
)
_keepers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncIterator[None]] = (
    weakref.WeakKeyDictionary()
)


class EndpointError(Exception):
    """An error reply, shaped as llm.retry reads errors: `status_code`, `response.headers`. The
    response is a plain copy of the headers: LangChain reads an error's `response.json()` as if
    it were synchronous, which aiohttp's is not."""

    def __init__(self, status_code: int, message: str, reply: aiohttp.ClientResponse) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.response = SimpleNamespace(headers={k.lower(): v for k, v in reply.headers.items()})


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
    async with (await session()).post(url, json=body, headers=headers) as reply:
        data = await reply.content.read(REPLY_BYTES + 1)
    if len(data) > REPLY_BYTES:
        raise EndpointError(502, f"the endpoint's reply passed {REPLY_BYTES >> 20} MiB", reply)
    if reply.status >= 400:
        said = data[:300].decode(errors="replace")
        raise EndpointError(reply.status, f"error {reply.status} from {url}: {said}", reply)
    try:
        parsed = json.loads(data)
        text = parsed["choices"][0]["message"]["content"] or ""
        usage = parsed.get("usage") or {}
        return str(text), int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise EndpointError(502, f"the endpoint's reply is not a chat completion ({exc!r})", reply) from None


async def session() -> aiohttp.ClientSession:
    """One connection pool per event loop (a session may not cross loops). An async generator
    holds it, so the loop's shutdown (`asyncio.run` ends with one) closes it cleanly."""
    loop = asyncio.get_running_loop()
    if loop not in _sessions or _sessions[loop].closed:
        _sessions[loop] = aiohttp.ClientSession(timeout=TIMEOUT, trust_env=False)
        _keepers[loop] = keeper = _keep(_sessions[loop])
        await keeper.__anext__()
    return _sessions[loop]


async def _keep(held: aiohttp.ClientSession) -> AsyncIterator[None]:
    try:
        yield
    finally:
        await held.close()


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
