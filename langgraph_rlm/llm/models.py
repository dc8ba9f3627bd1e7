"""Turning a model setting (a litellm string or a chat model object) into a chat model."""

from __future__ import annotations

import asyncio
import os
from functools import lru_cache
from typing import Any

from langchain_core.language_models import BaseChatModel

from langgraph_rlm.llm import openai_compatible
from langgraph_rlm.llm.openai_compatible import LOCAL_SERVER_KEY
from langgraph_rlm.llm.usage import Usage, call_usage, usage_of


def import_litellm() -> Any:
    """litellm without its start-up download of the price table (this tool must start offline)."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    return litellm


def chat_model(model: str | BaseChatModel, api_base: str | None = None) -> BaseChatModel:
    if isinstance(model, BaseChatModel):
        return model
    if openai_compatible.handles(model):
        return _openai_compatible_chat(model, api_base)
    return _litellm_chat_model(model, api_base)


@lru_cache(maxsize=32)
def _openai_compatible_chat(model: str, api_base: str | None) -> BaseChatModel:
    return openai_compatible.OpenAICompatibleChat(model=model, api_base=api_base)


@lru_cache(maxsize=32)
def _litellm_chat_model(model: str, api_base: str | None) -> BaseChatModel:
    import_litellm()
    from langgraph_rlm.llm.litellm_chat import PlainUsageChatLiteLLM

    return PlainUsageChatLiteLLM(model=model, max_retries=0, **connection(model, api_base))


@lru_cache(maxsize=32)
def connection(model: str, api_base: str | None) -> dict[str, Any]:
    """Where a litellm model is reached; a local server gets a placeholder key if none is set."""
    if not api_base:
        return {}
    if missing_credentials(model, None):
        return {"api_base": api_base, "api_key": LOCAL_SERVER_KEY}
    return {"api_base": api_base}


async def ask(
    model: str | BaseChatModel, prompt: str, api_base: str | None, depth: int, max_tokens: int | None = None
) -> tuple[str, Usage]:
    """One prompt, one answer. A model string goes straight to its endpoint (an `openai/...` one)
    or to litellm: for a batch of a hundred sub-calls the chat-model wrapper's overhead is a
    measurable share of the time. The provider client's own retries are off: the sub_call_retries
    setting is the only retry loop. `max_tokens` holds the answer to what the question's budget
    reserved for it, a chat model object's too."""
    if not isinstance(model, str):
        reply = await model.ainvoke(prompt, **({} if max_tokens is None else {"max_tokens": max_tokens}))
        return reply.text, usage_of(reply, model_name(model), depth, "sub")
    messages = [{"role": "user", "content": prompt}]
    if openai_compatible.handles(model):
        text, prompt_tokens, completion_tokens = await openai_compatible.complete(
            model, messages, api_base, max_tokens
        )
        return text, call_usage(model, depth, "sub", prompt_tokens, completion_tokens)
    litellm = await asyncio.to_thread(import_litellm)
    options = await asyncio.to_thread(connection, model, api_base)
    if max_tokens is not None:
        options = {**options, "max_tokens": max_tokens}
    response = await litellm.acompletion(model=model, messages=messages, max_retries=0, **options)
    tokens = response.usage
    usage = call_usage(
        model, depth, "sub", tokens.prompt_tokens if tokens else 0, tokens.completion_tokens if tokens else 0
    )
    return response.choices[0].message.content or "", usage


def model_name(model: str | BaseChatModel) -> str | None:
    """The name litellm prices a model by, when it has one."""
    if isinstance(model, str):
        return model
    return getattr(model, "model", None) or getattr(model, "model_name", None)


PROVIDER_KEYS: dict[str, tuple[tuple[str, ...], ...]] = {
    "anthropic": (("ANTHROPIC_API_KEY",), ("ANTHROPIC_AUTH_TOKEN",)),
    "gemini": (("GEMINI_API_KEY",), ("GOOGLE_API_KEY",)),
    "mistral": (("MISTRAL_API_KEY",),),
    "groq": (("GROQ_API_KEY",),),
    "cohere": (("COHERE_API_KEY",),),
    "deepseek": (("DEEPSEEK_API_KEY",),),
    "xai": (("XAI_API_KEY",),),
    "openrouter": (("OPENROUTER_API_KEY",),),
    "together_ai": (("TOGETHERAI_API_KEY",),),
    "fireworks_ai": (("FIREWORKS_AI_API_KEY",),),
    "perplexity": (("PERPLEXITYAI_API_KEY",),),
    "deepinfra": (("DEEPINFRA_API_KEY",),),
    "cerebras": (("CEREBRAS_API_KEY",),),
    "huggingface": (("HUGGINGFACE_API_KEY",),),
    "replicate": (("REPLICATE_API_KEY",),),
    "azure": (("AZURE_API_KEY", "AZURE_API_BASE", "AZURE_API_VERSION"),),
    "vertex_ai": (("VERTEXAI_PROJECT", "VERTEXAI_LOCATION"),),
    "bedrock": (
        ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
        ("AWS_PROFILE",),
        ("AWS_ROLE_ARN",),
        ("AWS_WEB_IDENTITY_TOKEN_FILE",),
        ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",),
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI",),
    ),
    "ollama": (("OLLAMA_API_BASE",),),
    "ollama_chat": (("OLLAMA_API_BASE",),),
    "hosted_vllm": ((),),
    "lm_studio": ((),),
}
"""The environment each common litellm provider reads, as litellm's validate_environment checks
it: any one tuple of variables, all set, will do. Importing litellm to ask takes seconds, so only a
provider missing here is left to litellm."""


def missing_credentials(model: str | BaseChatModel, api_base: str | None) -> list[str]:
    """The environment variables a provider needs and lacks (an empty one counts as lacking);
    a local server (api_base) needs no key and is its own base URL."""
    if not isinstance(model, str):
        return []
    if openai_compatible.handles(model):
        return openai_compatible.missing_key(api_base)
    provider = model.split("/", 1)[0] if "/" in model else ""
    if provider in PROVIDER_KEYS:
        choices = PROVIDER_KEYS[provider]
        lacking = [[name for name in names if not os.environ.get(name, "").strip()] for names in choices]
        missing = [] if any(not names for names in lacking) else lacking[0]
    else:
        missing = _litellm_missing_keys(model, api_base)
    if api_base:
        missing = [key for key in missing if not key.endswith(("_API_KEY", "_API_BASE"))]
    return missing


def _litellm_missing_keys(model: str, api_base: str | None) -> list[str]:
    litellm = import_litellm()
    empty = {key: value for key, value in os.environ.items() if not value.strip()}
    for key in empty:
        del os.environ[key]
    try:
        report = litellm.validate_environment(model=model, api_base=api_base)
    except Exception:
        return []
    finally:
        os.environ.update(empty)
    return list(report.get("missing_keys") or [])
