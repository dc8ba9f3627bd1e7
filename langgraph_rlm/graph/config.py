"""Every setting of a run, described once: the graph's context schema, the CLI's flags and the
`RLM_*` environment variables all come from the fields below."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

DEFAULT_MODEL = "openai/gpt-5"
DEFAULT_SUB_MODEL = "openai/gpt-5-mini"
SANDBOXES = ("local", "process", "docker", "e2b")
POSITIVE_SETTINGS = (
    "max_iterations",
    "max_sub_calls",
    "cell_timeout",
    "memory_limit",
    "max_processes",
    "cpus",
    "output_limit",
    "batch_concurrency",
    "max_sandboxes",
    "child_concurrency",
    "max_time",
    "max_folder_mb",
)


def setting(
    default: Any,
    description: str,
    *,
    env: str,
    flag: bool = True,
    separator: str = os.pathsep,
    old_env: str = "",
    path: bool = False,
) -> Any:
    """`separator` splits a tuple setting's environment variable; `old_env` is a former name of the
    variable, still read when the current one is not set; `path` marks a file or folder, made
    absolute as the settings are made so every sandbox and process sees the same place. A field
    not given takes its variable when it is set, so `replace()` keeps what a settings object holds
    instead of reading the environment again."""
    metadata = {
        "description": description,
        "default": default,
        "env": env,
        "flag": flag,
        "separator": separator,
        "old_env": old_env,
        "path": path,
    }
    return field(default_factory=lambda: from_environment(metadata, os.environ)[0], metadata=metadata)


@dataclass(kw_only=True)
class RLMSettings:
    model: str | BaseChatModel = setting(
        DEFAULT_MODEL,
        "Root model: a litellm model string (e.g. openai/gpt-5, anthropic/claude-sonnet-4-5, "
        "ollama/qwen3) or, from Python, any LangChain chat model.",
        env="RLM_MODEL",
    )
    sub_model: str | BaseChatModel = setting(
        DEFAULT_SUB_MODEL, "Model answering llm_query / llm_query_batched.", env="RLM_SUB_MODEL"
    )
    depth_models: tuple[str, ...] = setting(
        (),
        "Root model of each depth, as litellm strings: entry i answers for the RLM at depth i (e.g. a "
        "strong root, a cheaper child); depths past the list use --model.",
        env="RLM_DEPTH_MODELS",
        separator=",",
    )
    allowed_models: tuple[str, ...] = setting(
        (),
        "Further litellm model strings llm_query(..., model=) may name, besides --model and "
        "--sub-model; they are reached like the sub-model (through --api-base when set).",
        env="RLM_ALLOWED_MODELS",
        separator=",",
    )
    api_base: str | None = setting(
        None,
        "Base URL of an OpenAI-compatible server for both models (Ollama, vLLM, llama.cpp), "
        "e.g. http://127.0.0.1:8000/v1 with --model openai/NAME.",
        env="RLM_API_BASE",
    )
    sandbox: str = setting(
        "local",
        "Where REPL code runs: local (bubblewrap), docker, e2b, or process (no isolation).",
        env="RLM_SANDBOX",
    )
    docker_image: str = setting(
        "python:3.12-slim",
        "Image for --sandbox docker; any image with python3 works.",
        env="RLM_DOCKER_IMAGE",
    )
    cpus: float = setting(
        1.0,
        "CPUs the REPL may use (docker; local where it gets a cgroup).",
        env="RLM_CPUS",
        old_env="RLM_DOCKER_CPUS",
    )
    e2b_pause: bool = setting(
        False,
        "Pause the E2B sandbox instead of killing it when a run ends; the thread resumes it next run.",
        env="RLM_E2B_PAUSE",
    )
    e2b_workdir: str = setting(
        "/home/user/.rlm", "Folder inside an E2B sandbox for the worker and its files.", env="RLM_E2B_WORKDIR"
    )
    max_iterations: int = setting(
        30, "Root model steps per question before a best answer is asked.", env="RLM_MAX_ITERATIONS"
    )
    max_sub_calls: int = setting(
        1000,
        "Sub-model requests per question, over the whole rlm_query tree (a retry or a child RLM counts one).",
        env="RLM_MAX_SUB_CALLS",
    )
    max_tokens: int = setting(
        0,
        "Tokens (input and output) per question, over every model call of the whole rlm_query tree, "
        "root steps included; 0 for no limit.",
        env="RLM_MAX_TOKENS",
    )
    max_reply_tokens: int = setting(
        0,
        "Tokens one model reply may have (root steps, sub-calls, child RLMs); 0 leaves it to the model. "
        "A small local model may otherwise ramble for thousands of tokens in one step.",
        env="RLM_MAX_REPLY_TOKENS",
    )
    max_cost: float = setting(
        0.0,
        "Dollars per question over the whole tree, priced by litellm's table or --model-price (a model "
        "neither prices only counts tokens); 0 for no limit.",
        env="RLM_MAX_COST",
    )
    model_prices: tuple[str, ...] = setting(
        (),
        "A model's price as MODEL=IN,OUT, dollars per million input and output tokens (e.g. "
        "ollama/qwen3=0,0), for a model litellm does not price: its cost is then known and --max-cost "
        "holds for it. Repeatable; the environment variable separates entries with ';'.",
        env="RLM_MODEL_PRICES",
        separator=";",
    )
    max_time: float = setting(
        3600.0,
        "Seconds a question may run, counting the time its steps ran (not a pause at a breakpoint"
        " or an approval, nor the gap before a resume).",
        env="RLM_MAX_TIME",
    )
    max_depth: int = setting(
        1, "How deep rlm_query may recurse; at the limit it becomes a plain llm_query.", env="RLM_MAX_DEPTH"
    )
    cell_timeout: float = setting(
        120.0,
        "Seconds one REPL cell may run, and a restore of the REPL from its snapshot in all.",
        env="RLM_CELL_TIMEOUT",
    )
    memory_limit: int = setting(4096, "Memory limit of the REPL, in MiB.", env="RLM_MEMORY_LIMIT")
    max_processes: int = setting(64, "Processes the REPL may run at once.", env="RLM_MAX_PROCESSES")
    max_stored_mb: int = setting(
        2048,
        "REPL data (snapshots of changed variables, rlm_query contexts) one question may add to the "
        "store, in MiB.",
        env="RLM_MAX_STORED_MB",
    )
    max_folder_mb: int = setting(
        1024,
        "Most a folder given as a context may hold, in MiB of text files on disk; a larger one is refused "
        "before anything is stored.",
        env="RLM_MAX_FOLDER_MB",
    )
    output_limit: int = setting(
        20_000, "Characters of a cell's output the root model sees (head and tail).", env="RLM_OUTPUT_LIMIT"
    )
    batch_concurrency: int = setting(
        16, "Sub-model calls in flight at once for llm_query_batched.", env="RLM_BATCH_CONCURRENCY"
    )
    child_concurrency: int = setting(
        4,
        "Child RLMs (each with its own sandbox) alive at once per parent, for rlm_query_batched.",
        env="RLM_CHILD_CONCURRENCY",
    )
    sub_call_retries: int = setting(
        2,
        "Retries of a model call that failed for a passing reason (rate limit, server error, timeout, "
        "dropped connection), sub-calls and root steps alike; others fail at once.",
        env="RLM_SUB_CALL_RETRIES",
    )
    cache_sub_calls: bool = setting(
        True,
        "Answer an identical sub-call (same model, settings and prompt) of a thread from the thread's "
        "store, so a resumed, replayed or forked run never pays twice; runs without a thread keep none.",
        env="RLM_CACHE_SUB_CALLS",
    )
    approve_code: bool = setting(
        False,
        "Pause before each cell of the root RLM until a person approves, edits or rejects its code "
        "(on the terminal, or Command(resume=...) from the SDK / Studio); rlm_query children do not ask.",
        env="RLM_APPROVE_CODE",
    )
    system_prompt_file: str | None = setting(
        None,
        "A text file to use as the root model's system prompt instead of the built-in one; it may use "
        "the built-in's placeholders $contexts, $output_limit and $max_iterations ($$ for a dollar sign); "
        "lines starting with # at its top are notes, not sent.",
        env="RLM_SYSTEM_PROMPT_FILE",
    )
    allow_dirs: tuple[str, ...] = setting(
        (),
        "Folders whose files load_file may read (besides the contexts).",
        env="RLM_ALLOW_DIRS",
        path=True,
    )
    context_window: int = setting(
        0,
        "Root model's input window in tokens; 0 takes it from litellm's model info (set it for models "
        "litellm does not know).",
        env="RLM_CONTEXT_WINDOW",
    )
    compact_threshold: float = setting(
        0.85,
        "Share of the window at which a question's working history is summarised mid-question.",
        env="RLM_COMPACT_THRESHOLD",
    )
    compact_turns: bool = setting(
        True,
        "Summarise each finished turn's working messages (question and answer kept).",
        env="RLM_COMPACT_TURNS",
    )
    path_contexts: bool = setting(
        False,
        "Read a context that names a file from that file, wherever it is (the CLI always does). "
        "Off, only files under allow_dirs are read and any other context is text: keep it off where "
        "callers are remote.",
        env="RLM_PATH_CONTEXTS",
        flag=False,
    )
    state_dir: str = setting(
        ".rlm", "Where threads, contexts and REPL snapshots are stored.", env="RLM_STATE_DIR", path=True
    )
    db: str | None = setting(
        None,
        "A PostgreSQL URL (postgresql://...) to keep threads and blobs in instead of the state dir.",
        env="RLM_DB",
    )
    sandbox_idle_timeout: float = setting(
        600.0, "Seconds an unused sandbox stays alive before it is closed.", env="RLM_SANDBOX_IDLE_TIMEOUT"
    )
    max_sandboxes: int = setting(
        16,
        "Live sandboxes the process keeps (the longest idle close first; a busy one never does).",
        env="RLM_MAX_SANDBOXES",
    )
    depth: int = setting(0, "Recursion depth of this RLM (0 for the root).", env="RLM_DEPTH", flag=False)

    def model_names(self) -> set[str]:
        """The models a run's context or the REPL's `model=` may name: the operator's, nothing else."""
        configured = (self.model, self.sub_model, *self.depth_models, *self.allowed_models)
        return {model for model in configured if isinstance(model, str)}

    def root_model(self) -> str | BaseChatModel:
        """The root model of this RLM's depth."""
        return self.depth_models[self.depth] if self.depth < len(self.depth_models) else self.model

    def __post_init__(self) -> None:
        """A relative path means the working directory the settings were made in, for every
        backend alike: bwrap reads a relative source from /, and Docker takes it for a volume name."""
        for spec in fields(self):
            value = getattr(self, spec.name)
            if spec.metadata["path"] and value:
                resolved = tuple(map(absolute, value)) if isinstance(value, tuple) else absolute(value)
                setattr(self, spec.name, resolved)


def absolute(path: str) -> str:
    return os.path.abspath(os.path.expanduser(path))


def from_environment(metadata: Mapping[str, Any], environ: Mapping[str, str]) -> tuple[Any, str]:
    """A setting's value from its `RLM_*` variable and the variable's name; the default and ""
    when none is set."""
    for name in (metadata["env"], metadata["old_env"]):
        if name and name in environ:
            return parse_text(metadata, environ[name], name), name
    return metadata["default"], ""


def parse_setting(name: str, raw: str, env: str = "") -> Any:
    """A setting's value from text (an environment variable or a flag); ValueError when it is bad."""
    spec = next(f for f in fields(RLMSettings) if f.name == name)
    return parse_text(spec.metadata, raw, env or spec.metadata["env"])


def parse_text(metadata: Mapping[str, Any], raw: str, label: str) -> Any:
    default = metadata["default"]
    kind = type(default)
    if default is None or kind is str:
        return raw or None if default is None else raw
    if kind is bool:
        lowered = raw.strip().lower()
        if lowered not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            raise ValueError(f"{label}={raw!r} is not a yes/no value")
        return lowered in ("1", "true", "yes", "on")
    if kind is tuple:
        return tuple(part.strip() for part in raw.split(metadata["separator"]) if part.strip())
    try:
        return kind(raw)
    except ValueError:
        raise ValueError(f"{label}={raw!r} is not a valid {kind.__name__}") from None


def typed_setting(name: str, value: Any) -> Any:
    """A setting's value from a typed source (a TOML file); ValueError saying what it should be."""
    default = next(f for f in fields(RLMSettings) if f.name == name).metadata["default"]
    kind = type(default)
    if kind is tuple:
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return tuple(value)
        raise ValueError("must be a list of strings")
    wanted = str if default is None else kind
    if wanted is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, wanted) or (wanted is int and isinstance(value, bool)):
        raise ValueError(f"must be {KINDS[wanted]}, not {value!r:.60}")
    return value


KINDS = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


class Origin(NamedTuple):
    """Where a setting's value came from: `source` as listings show it (default, a flag, a
    variable, a file), `label` as a message names the setting there."""

    source: str
    label: str


@dataclass
class Layer:
    """Settings from one place, each with its origin."""

    values: dict[str, Any]
    origins: dict[str, Origin]


def environment_layer(environ: Mapping[str, str] = os.environ) -> Layer:
    layer = Layer({}, {})
    for spec in fields(RLMSettings):
        value, name = from_environment(spec.metadata, environ)
        if name:
            layer.values[spec.name] = value
            layer.origins[spec.name] = Origin(name, name)
    return layer


def layered(layers: Sequence[Layer]) -> tuple[RLMSettings, dict[str, Origin]]:
    """Each layer over the ones before it, over the built-in defaults: every field is given, so
    nothing else (no environment variable a layer left out) decides a value."""
    specs = fields(RLMSettings)
    values = {spec.name: spec.metadata["default"] for spec in specs}
    origins = {spec.name: Origin("default", spec.name) for spec in specs}
    for layer in layers:
        values.update(layer.values)
        origins.update(layer.origins)
    return RLMSettings(**values), origins
