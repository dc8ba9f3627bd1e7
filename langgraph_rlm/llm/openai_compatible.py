"""OpenAI-compatible chat endpoints (`openai/...` models: OpenAI itself, or a local server at
--api-base), called directly with httpx. Importing litellm takes seconds, longer than a whole
short question; every other provider still goes through litellm."""

from __future__ import annotations

import asyncio
import os
import weakref
from typing import Any

import httpx
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

LOCAL_SERVER_KEY = "no-key-needed"
REPLY_BYTES = 16 << 20
TIMEOUT = httpx.Timeout(600.0, connect=10.0)
ROLES = {"system": "system", "human": "user", "ai": "assistant", "tool": "tool"}

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[bool, httpx.AsyncClient]] = (
    weakref.WeakKeyDictionary()
)


class EndpointError(Exception):
    """An error reply, shaped as llm.retry reads errors: `status_code`, `response.headers`."""

    def __init__(self, status_code: int, message: str, response: httpx.Response | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.response = response


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
    async with client(url.startswith("https:")).stream("POST", url, json=body, headers=headers) as reply:
        data = await bounded(reply)
    if reply.status_code >= 400:
        said = data[:300].decode(errors="replace")
        raise EndpointError(reply.status_code, f"error {reply.status_code} from {url}: {said}", reply)
    try:
        parsed = httpx.Response(200, content=data).json()
        text = parsed["choices"][0]["message"]["content"] or ""
        usage = parsed.get("usage") or {}
        return str(text), int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise EndpointError(502, f"the endpoint's reply is not a chat completion ({exc!r})", reply) from None


async def bounded(reply: httpx.Response) -> bytes:
    """The body, refused past REPLY_BYTES: the endpoint is named by a setting, not trusted."""
    chunks, size = [], 0
    async for chunk in reply.aiter_bytes():
        size += len(chunk)
        if size > REPLY_BYTES:
            raise EndpointError(502, f"the endpoint's reply passed {REPLY_BYTES >> 20} MiB", reply)
        chunks.append(chunk)
    return b"".join(chunks)


def client(secure: bool) -> httpx.AsyncClient:
    """One connection pool per event loop (a client may not cross loops) and scheme: a plain-HTTP
    server (a local one) needs no certificate store, whose loading costs 0.1 s at start-up."""
    clients = _clients.setdefault(asyncio.get_running_loop(), {})
    if secure not in clients:
        clients[secure] = httpx.AsyncClient(timeout=TIMEOUT, trust_env=False, verify=secure)
    return clients[secure]


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
