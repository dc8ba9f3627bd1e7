"""The litellm chat model the root calls go through, with its token counts as plain data.

langchain-litellm puts litellm's own `Usage` object in the reply's metadata; the LangChain tracer
serialises a reply through a union of generation types, and that object makes pydantic warn on
stderr at every root call while tracing is on. A dict of the same counts serialises cleanly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_core.outputs import ChatResult
from langchain_litellm import ChatLiteLLM
from pydantic import BaseModel


class PlainUsageChatLiteLLM(ChatLiteLLM):
    name: str | None = "ChatLiteLLM"

    def _create_chat_result(self, response: Mapping[str, Any], **params: Any) -> ChatResult:
        result = super()._create_chat_result(response, **params)
        usage = (result.llm_output or {}).get("token_usage")
        if isinstance(usage, BaseModel):
            result.llm_output["token_usage"] = usage.model_dump(exclude_none=True)
        return result
