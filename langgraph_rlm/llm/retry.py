"""Which model errors are worth another attempt, and how long to wait before it.

A rate limit, a server error, a timeout or a dropped connection passes; a wrong key, a bad
request or a prompt past the model's window fails the same way every time, so it fails at once
and says why in one line that names the model.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")
TRANSIENT_STATUS = frozenset({408, 409, 425, 429})
BASE_DELAY = 0.5
MAX_DELAY = 30.0
NO_STATUS_PERMANENT = ("ContextWindowExceededError", "ContentPolicyViolationError", "UnsupportedParamsError")


class ModelCallError(RuntimeError):
    """A model call that failed for good; the message is one line naming the model."""


def status_of(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def is_transient(exc: BaseException) -> bool:
    """By HTTP status where there is one; errors without one (connections, timeouts, a chat
    model object's own failures) are taken as passing, except the known permanent kinds."""
    if any(kind.__name__ in NO_STATUS_PERMANENT for kind in type(exc).__mro__):
        return False
    status = status_of(exc)
    if status is None:
        return True
    return status in TRANSIENT_STATUS or status >= 500


def retry_after(exc: BaseException) -> float | None:
    """The server's Retry-After, in seconds (a number or an HTTP date), when it sent one."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or getattr(exc, "litellm_response_headers", None) or {}
    try:
        value = headers.get("retry-after")
    except AttributeError:
        return None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(str(value)) if str(value).strip() else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def backoff(attempt: int, exc: BaseException) -> float:
    """Exponential with jitter, so a batch that failed together does not come back together."""
    wanted = retry_after(exc)
    if wanted is None:
        wanted = BASE_DELAY * 2**attempt * random.uniform(0.5, 1.5)
    return min(wanted, MAX_DELAY)


def describe(exc: BaseException, model: str, attempts: int) -> str:
    detail = " ".join(str(exc).split())[:300] or type(exc).__name__
    status = status_of(exc)
    kind = f"{type(exc).__name__} ({status})" if status else type(exc).__name__
    if cannot_connect(exc):
        return (
            f"{model}: cannot connect after {attempts} attempt(s); check the endpoint (--api-base, "
            f"RLM_API_BASE) and the network ({detail})"
        )
    if status in (401, 403) or "Authentication" in type(exc).__name__:
        return (
            f"{model}: the provider refused the credentials, not retried; check {key_name(model)} ({detail})"
        )
    if is_transient(exc):
        return f"{model}: {kind} after {attempts} attempt(s): {detail}"
    return f"{model}: {kind}, not retried: {detail}"


def cannot_connect(exc: BaseException) -> bool:
    """Nothing answered at the endpoint (litellm reports it as an error 500 "Connection error")."""
    chain = [exc, exc.__cause__, exc.__context__]
    names = {kind.__name__ for error in chain if error is not None for kind in type(error).__mro__}
    return bool(
        names & {"APIConnectionError", "ConnectError", "ConnectionError"}
    ) or "Connection error" in str(exc)


def key_name(model: str) -> str:
    """The environment variable a provider's key goes in, by litellm's naming."""
    provider = model.split(" at ")[0].split("/")[0] if "/" in model else "openai"
    return f"{provider.upper().replace('-', '_')}_API_KEY"


async def with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    retries: int,
    model: str,
    may_retry: Callable[[], bool] = lambda: True,
) -> T:
    """`call`, again after each transient failure, at most `retries` more times; `may_retry`
    claims each further attempt from a budget. The final failure is a ModelCallError."""
    attempt = 0
    while True:
        try:
            return await call()
        except Exception as exc:
            if attempt >= retries or not is_transient(exc):
                raise ModelCallError(describe(exc, model, attempt + 1)) from exc
            await asyncio.sleep(backoff(attempt, exc))
            if not may_retry():
                raise ModelCallError(describe(exc, model, attempt + 1)) from exc
            attempt += 1


def named(model: Any, api_base: str | None = None) -> str:
    """How a model appears in an error: its litellm string and endpoint, or its class and model name."""
    if isinstance(model, str):
        return f"{model} at {api_base}" if api_base else model
    return str(getattr(model, "model", None) or getattr(model, "model_name", None) or type(model).__name__)
