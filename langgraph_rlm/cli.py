"""The `rlm` command: questions about files too large for any model, answered from a REPL.

The answer goes to stdout and nothing else does; progress goes to stderr. Every thread is kept
in a SQLite file under the state directory, REPL included, so `--thread NAME` picks up where
any earlier run left off.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Coroutine
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from langgraph_rlm import collector, signals
from langgraph_rlm.graph.config import POSITIVE_SETTINGS, SANDBOXES, RLMSettings
from langgraph_rlm.progress import Progress, cost_text, intro, usage_line
from langgraph_rlm.terminal import literal, write_answer

DEFAULT_THREAD = "default"
T = TypeVar("T")
EXIT_USAGE, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_TERMINATED = 2, 1, 130, 143
STOPPED_BY = {EXIT_INTERRUPTED: "interrupted", EXIT_TERMINATED: "terminated"}
FLAG_NAMES = {
    "approve_code": "approve",
    "allow_dirs": "allow-dir",
    "allowed_models": "allow-model",
    "depth_models": "depth-model",
}
METAVARS = {"allowed_models": "MODEL", "depth_models": "MODEL"}
FORMER_FLAGS = {"cpus": ("--docker-cpus",)}

stderr = Console(stderr=True, highlight=False)
stdout = Console(highlight=False, soft_wrap=True)


class UserError(click.ClickException):
    """One line on stderr and a non-zero exit; nothing the user gave is lost."""

    exit_code = EXIT_USAGE


# --- options -----------------------------------------------------------------------------


def settings_options(command: Callable) -> Callable:
    """The settings' flags, the thread to use and --quiet."""
    command = setting_flags(command)
    command = click.option(
        "--thread", default=DEFAULT_THREAD, show_default=True, help="Conversation to use or resume."
    )(command)
    return quiet_option(command)


def quiet_option(command: Callable) -> Callable:
    return click.option("--quiet", "-q", is_flag=True, help="No progress on stderr.")(command)


def setting_flags(command: Callable) -> Callable:
    """One flag per setting, with the setting's description and environment variable as help."""
    for spec in reversed(fields(RLMSettings)):
        if not spec.metadata.get("flag"):
            continue
        name = FLAG_NAMES.get(spec.name, spec.name.replace("_", "-"))
        shown = spec.default if spec.default not in (None, ()) else "none"
        help_text = f"{spec.metadata['description']} [env {spec.metadata['env']}; default {shown}]"
        if isinstance(spec.default, bool):
            option = click.option(f"--{name}/--no-{name}", spec.name, default=None, help=help_text)
        elif isinstance(spec.default, tuple):
            option = click.option(
                f"--{name}", spec.name, multiple=True, metavar=METAVARS.get(spec.name, "DIR"), help=help_text
            )
        elif spec.name == "sandbox":
            option = click.option(f"--{name}", spec.name, type=click.Choice(SANDBOXES), help=help_text)
        else:
            kind = {int: int, float: float}.get(type(spec.default), str)
            names = (f"--{name}", *FORMER_FLAGS.get(spec.name, ()))
            option = click.option(*names, spec.name, type=kind, help=help_text)
        command = option(command)
    return command


def store_options(command: Callable) -> Callable:
    """Where threads live, for the commands that take no other setting."""
    for spec in reversed([f for f in fields(RLMSettings) if f.name in ("state_dir", "db")]):
        help_text = f"{spec.metadata['description']} [env {spec.metadata['env']}]"
        command = click.option(f"--{spec.name.replace('_', '-')}", spec.name, default=None, help=help_text)(
            command
        )
    return command


def build_settings(options: dict[str, Any]) -> RLMSettings:
    """Flags win over RLM_* variables, which win over the defaults. The CLI's user names the files
    to read, so contexts given as paths are read wherever they are."""
    try:
        settings = RLMSettings()
    except ValueError as exc:
        raise UserError(str(exc)) from None
    for spec in fields(RLMSettings):
        value = options.get(spec.name)
        if value is not None and value != ():
            setattr(settings, spec.name, tuple(value) if isinstance(value, (list, tuple)) else value)
    settings.path_contexts = True
    problem = settings_problem(settings)
    if problem:
        raise UserError(problem)
    return settings


def settings_problem(settings: RLMSettings) -> str | None:
    for name in POSITIVE_SETTINGS:
        if getattr(settings, name) <= 0:
            return f"--{name.replace('_', '-')} must be greater than 0"
    for folder in settings.allow_dirs:
        if not Path(folder).is_dir():
            return f"--allow-dir {folder}: not a directory"
    if settings.system_prompt_file:
        from langgraph_rlm.prompts import PromptFileError, system_template

        try:
            system_template(settings.system_prompt_file)
        except PromptFileError as exc:
            return str(exc)
    return None


def handle_errors(command: Callable) -> Callable:
    """Turns every failure into one line on stderr and an exit code."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except click.ClickException:
            raise
        except (KeyboardInterrupt, signals.Stopped) as exc:
            code = getattr(exc, "exit_code", EXIT_INTERRUPTED)
            stderr.print(f"[yellow]{STOPPED_BY[code]}[/]; the thread is saved up to its last step")
            sys.exit(code)
        except Exception as exc:
            if os.environ.get("RLM_DEBUG"):
                raise
            say_error(one_line(exc))
            sys.exit(EXIT_FAILED)

    return run


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """A command's coroutine starts once its imports are done."""
    collector.imported()
    return signals.run(coroutine)


def say_error(message: str) -> None:
    stderr.print(Text.assemble(("error:", "red"), " ", literal(message)), soft_wrap=True)


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) < 400 else text[:397] + "..."


# --- commands ---------------------------------------------------------------------------------


class OneLineErrors(click.Group):
    """Usage mistakes get one line, like every other error, instead of click's usage block."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().main(*args, standalone_mode=False, **kwargs)
        except click.exceptions.Abort:
            stderr.print("[yellow]interrupted[/]")
            sys.exit(EXIT_INTERRUPTED)
        except click.ClickException as exc:
            hint = f" (see {exc.ctx.command_path} --help)" if getattr(exc, "ctx", None) else ""
            say_error(f"{exc.format_message()}{hint}")
            sys.exit(exc.exit_code)


@click.group(
    cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110}
)
@click.version_option(package_name="langgraph-rlm")
def main() -> None:
    """Recursive Language Models: ask questions about text far larger than any model's window.

    The text stays in a sandboxed Python REPL; the model explores it with code and sub-model calls.
    """


@main.command()
@click.argument("question")
@click.option(
    "--context", "-c", "contexts", multiple=True, metavar="PATH", help="A file to ask about (repeatable)."
)
@settings_options
@handle_errors
def run(question: str, contexts: tuple[str, ...], thread: str, quiet: bool, **options: Any) -> None:
    """Answer QUESTION about the --context files; the answer alone goes to stdout."""
    progress = Progress(stderr, quiet)
    try:
        settings, paths = prepare(question, contexts, options, thread, progress)
        answer = run_async(ask(question, paths, settings, thread, progress))
    finally:
        progress.close()
    write_answer(answer, sys.stdout)


@main.command()
@click.option(
    "--context", "-c", "contexts", multiple=True, metavar="PATH", help="A file to ask about (repeatable)."
)
@settings_options
@handle_errors
def chat(contexts: tuple[str, ...], thread: str, quiet: bool, **options: Any) -> None:
    """An interactive conversation; every turn is saved to the thread as it ends."""
    progress = Progress(stderr, quiet)
    try:
        settings, paths = prepare("chat", contexts, options, thread, progress)
    finally:
        progress.close()
    said = intro(str(settings.root_model()), settings.api_base, settings.sandbox, thread)
    stderr.print(literal(f"{said} · /exit or Ctrl-D to leave", "dim"))
    while True:
        try:
            question = stderr.input("[bold green]you>[/] ").strip()
        except EOFError:
            return
        if question in ("/exit", "/quit"):
            return
        if not question:
            continue
        progress = Progress(stderr, quiet)
        progress.begin(f"asking {settings.root_model()}", keep=False)
        try:
            answer = run_async(ask(question, paths, settings, thread, progress))
        finally:
            progress.close()
        write_answer(answer, sys.stdout)
        paths = []


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--thread", default=DEFAULT_THREAD, show_default=True, help="Conversation to add the files to.")
@store_options
@handle_errors
def init(paths: tuple[str, ...], thread: str, **store: str | None) -> None:
    """Store PATHS as contexts of a thread before asking anything."""
    from langgraph_rlm.threads import add_contexts

    settings = build_settings(store)
    files = [checked_file(path) for path in paths]
    added = run_async(add_contexts(settings, thread, files))
    for ref in added:
        stderr.print(literal(f"{ref['name']}: {ref['label']} ({ref['size']:,} bytes)"))
    stderr.print(literal(f"{len(added)} new context(s) in thread {thread}", "dim"))


@main.command()
@click.option("--thread", default=DEFAULT_THREAD, show_default=True, help="Conversation to show.")
@store_options
@handle_errors
def status(thread: str, **store: str | None) -> None:
    """Show a thread's contexts, REPL variables, steps, tokens and cost."""
    from langgraph_rlm.threads import thread_values

    settings = build_settings(store)
    values = run_async(thread_values(settings, thread))
    if values is None:
        raise UserError(f"no thread named {thread!r} in {where(settings)}")
    show_status(thread, values)


@main.command()
@store_options
@handle_errors
def threads(**store: str | None) -> None:
    """List the threads, oldest first, with their last question."""
    from langgraph_rlm.threads import list_threads

    rows = run_async(list_threads(build_settings(store)))
    table = Table("thread", "last question", "contexts", "steps", "usage", "updated")
    for row in rows:
        question = (row.get("query") or "")[:60]
        contexts = sum(isinstance(c, dict) for c in row.get("contexts", []))
        usage = row.get("total_usage", {})
        calls = usage.get("root_calls", 0) + usage.get("sub_calls", 0)
        cells = (
            row["thread"],
            question,
            contexts,
            row.get("iteration", 0),
            f"{calls} calls, {cost_text(usage)}",
            row["ts"][:19].replace("T", " "),
        )
        table.add_row(*map(literal, cells))
    stdout.print(table if rows else "no threads yet")


@main.command()
@click.option("--thread", required=True, help="The thread to forget.")
@store_options
@handle_errors
def reset(thread: str, **store: str | None) -> None:
    """Forget a thread: its checkpoints go, and stored blobs nothing else refers to."""
    from langgraph_rlm.threads import reset_thread, thread_values

    settings = build_settings(store)
    if run_async(thread_values(settings, thread)) is None:
        raise UserError(f"no thread named {thread!r} in {where(settings)}")
    removed, freed = run_async(reset_thread(settings, thread))
    stderr.print(literal(f"thread {thread} reset; {removed} blob(s) collected, {freed:,} bytes freed"))


@main.command()
@click.option("--thread", default=DEFAULT_THREAD, show_default=True, help="Conversation to show.")
@click.option(
    "--html", "html_path", metavar="PATH", help="Write the trajectory as one self-contained web page."
)
@click.option(
    "--jsonl", "jsonl_path", metavar="PATH", help="Write it as JSON lines, each step once ('-': stdout)."
)
@store_options
@handle_errors
def trace(thread: str, html_path: str | None, jsonl_path: str | None, **store: str | None) -> None:
    """Write a thread's trajectory: every question, step, sub-call and child RLM, from its checkpoints."""
    from langgraph_rlm.trajectory.jsonl import to_jsonl
    from langgraph_rlm.trajectory.page import to_html
    from langgraph_rlm.trajectory.reader import read_trajectory

    if not html_path and not jsonl_path:
        raise UserError("give --html PATH, --jsonl PATH, or both")
    settings = build_settings(store)
    trajectory = run_async(read_trajectory(settings, thread))
    if trajectory is None:
        raise UserError(f"no thread named {thread!r} in {where(settings)}")
    for path, render in ((html_path, to_html), (jsonl_path, to_jsonl)):
        if path:
            write_output(path, render(trajectory))
    steps = sum(len(q.get("steps", [])) for q in trajectory["questions"])
    stderr.print(
        literal(f"thread {thread}: {len(trajectory['questions'])} question(s), {steps} step(s)", "dim")
    )


@main.command()
@click.option("--models", is_flag=True, help="Also send one tiny request to each configured model.")
@settings_options
@handle_errors
def doctor(thread: str, quiet: bool, models: bool, **options: Any) -> None:
    """Report which sandboxes can run here and which model credentials are present; fails when
    the configured sandbox cannot run (or, with --models, a model does not answer)."""
    from langgraph_rlm.doctor import credential_names, model_answers, model_checks, sandbox_checks

    settings = build_settings(options)
    checks = [*sandbox_checks(settings), *model_checks(settings)]
    if models:
        checks += run_async(model_answers(settings))
    table = Table("check", "status", "detail")
    table.columns[0].no_wrap = True
    for check in checks:
        status = "[green]ok[/]" if check.ok else "[red]unavailable[/]"
        table.add_row(literal(check.name), status, literal(check.detail))
    stdout.print(table)
    names = credential_names()
    stdout.print(literal(f"credentials in the environment (names only): {', '.join(names) or 'none'}"))
    failed = [
        c.name for c in checks if not c.ok and (c.name == settings.sandbox or c.name.endswith(" answers"))
    ]
    if failed:
        raise click.ClickException(f"not ready: {', '.join(failed)} (see the table above)")


@main.group()
def bench() -> None:
    """Measure a model on generated tasks with known answers as the context grows: accuracy,
    tokens, cost and time per size, as a table (stdout), JSON and a PNG chart."""


def bench_options(command: Callable) -> Callable:
    from langgraph_rlm.bench.sizes import DEFAULT

    options = (
        click.option(
            "--sizes",
            default=DEFAULT,
            show_default=True,
            help="Context sizes in tokens, comma-separated: 13 is 2^13; or 8k, 1m (binary), or 5000; "
            "from 256 (8) to 1m (20).",
        ),
        click.option("--runs", type=int, default=1, show_default=True, help="Runs per size, new seed each."),
        click.option("--seed", type=int, default=0, show_default=True, help="Seed of the generated tasks."),
        click.option("--json", "json_path", metavar="PATH", help="Write all runs and sizes as JSON."),
        click.option("--plot", "plot_path", metavar="PATH", help="Write accuracy, tokens by size as PNG."),
    )
    command = quiet_option(setting_flags(command))
    for option in reversed(options):
        command = option(command)
    return command


@bench.command()
@bench_options
@handle_errors
def niah(**options: Any) -> None:
    """A needle in a generated haystack (the paper's S-NIAH): one sentence holds a secret code."""
    benchmark("niah", **options)


@bench.command()
@bench_options
@handle_errors
def aggregate(**options: Any) -> None:
    """OOLONG-like: labelled log lines; how many carry a label, or which label is most frequent."""
    benchmark("aggregate", **options)


# --- helpers ------------------------------------------------------------------------------------


def prepare(
    question: str, contexts: tuple[str, ...], options: dict[str, Any], thread: str, progress: Progress
) -> tuple[RLMSettings, list[str]]:
    """Everything that can be checked before a model is called or a sandbox started; says what
    the run will do before the first slow check (credentials: litellm loads for a provider other
    than openai/)."""
    from langgraph_rlm.sandboxes import SandboxUnavailable, check_available

    if not question.strip():
        raise UserError("the question is empty")
    settings = build_settings(options)
    paths = [str(checked_file(path)) for path in contexts]
    try:
        check_available(settings.sandbox)
    except SandboxUnavailable as exc:
        raise UserError(str(exc)) from None
    if settings.approve_code and not sys.stdin.isatty():
        raise UserError(
            "--approve asks on the terminal, and stdin is not one (approve through the SDK instead)"
        )
    progress.begin(intro(str(settings.root_model()), settings.api_base, settings.sandbox, thread))
    check_credentials(settings)
    return settings, paths


def benchmark(
    name: str,
    sizes: str,
    runs: int,
    seed: int,
    json_path: str | None,
    plot_path: str | None,
    quiet: bool,
    **options: Any,
) -> None:
    """Each run is a fresh thread, kept in the state dir for `rlm trace`; its turn is not
    summarised (no turn follows) unless --compact-turns says so."""
    from langgraph_rlm.bench.progress import RunProgress
    from langgraph_rlm.bench.report import plot, summarise, table, to_json
    from langgraph_rlm.bench.runner import run_bench
    from langgraph_rlm.bench.sizes import parse_sizes

    try:
        tokens = parse_sizes(sizes)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if runs < 1:
        raise UserError("--runs must be at least 1")
    if options.get("compact_turns") is None:
        options["compact_turns"] = False
    progress = Progress(stderr, quiet)
    try:
        settings, _ = prepare(f"bench {name}", (), options, f"bench-{name}-*", progress)
    finally:
        progress.close()
    model = str(settings.root_model())
    if not quiet:
        stderr.print(literal(intro(model, settings.api_base, settings.sandbox, f"bench-{name}-*"), "dim"))

    watch = RunProgress(stderr, name, runs, quiet)
    try:
        results = run_async(run_bench(name, tokens, runs, seed, settings, watch))
    finally:
        watch.close()
    rows = summarise(results)
    (stderr if json_path == "-" else stdout).print(table(name, model, rows))
    if json_path:
        write_output(json_path, to_json(name, seed, settings, rows, results))
    if plot_path:
        write_output(plot_path, plot(rows))
    if all(r["error"] for r in results):
        raise click.ClickException(f"every run failed; the first: {results[0]['error']}")


def write_output(path: str, content: str | bytes) -> None:
    if path == "-":
        if isinstance(content, bytes):
            sys.stdout.buffer.write(content)
        else:
            sys.stdout.write(content)
        return
    try:
        if isinstance(content, bytes):
            Path(path).write_bytes(content)
        else:
            Path(path).write_text(content, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None


def checked_file(path: str) -> Path:
    from langgraph_rlm.persistence.contexts import ContextError, check_context_file

    try:
        return check_context_file(path)
    except ContextError as exc:
        raise UserError(str(exc)) from None


def check_credentials(settings: RLMSettings) -> None:
    from langgraph_rlm.llm.models import missing_credentials

    depths = [("--depth-model", model) for model in settings.depth_models]
    for flag, model in (("--model", settings.model), ("--sub-model", settings.sub_model), *depths):
        missing = missing_credentials(model, settings.api_base)
        if missing:
            raise UserError(
                f"{flag} {model} needs {', '.join(missing)} in the environment "
                "(or point --api-base at a local OpenAI-compatible server)"
            )


async def ask(question: str, paths: list[str], settings: RLMSettings, thread: str, progress: Progress) -> str:
    from langgraph_rlm.approver import TerminalApprover
    from langgraph_rlm.sandboxes.base import SandboxLost
    from langgraph_rlm.threads import UnfinishedTurn, run_turn

    approver = TerminalApprover(stderr) if settings.approve_code else None
    progress.show_code = approver is None
    try:
        return await run_turn(settings, thread, question, paths, progress, approver)
    except UnfinishedTurn as exc:
        raise UserError(str(exc)) from None
    except EOFError:
        raise UserError("no answer to the approval prompt; ask the same question again to resume") from None
    except SandboxLost as exc:
        raise SandboxLost(
            f"the run stopped, its thread saved up to the last step (ask the same question again to "
            f"resume it): {exc}"
        ) from None


def show_status(thread: str, values: dict[str, Any]) -> None:
    stdout.print(Text.assemble(("thread", "bold"), " ", literal(thread)))
    contexts = Table("context", "name", "bytes", "source", title="contexts", title_justify="left")
    contexts.columns[3].overflow = "fold"
    for ref in values.get("contexts", []):
        if isinstance(ref, dict):
            source = ref["source"] or "(inline text)"
            contexts.add_row(*map(literal, (ref["name"], ref["label"], f"{ref['size']:,}", source)))
    stdout.print(contexts)
    variables = Table("variable", "type", "length", title="REPL variables", title_justify="left")
    for row in values.get("repl", {}).get("variables", []):
        size = "" if row["size"] is None else f"{row['size']:,}"
        variables.add_row(*map(literal, (row["name"], row["type"], size)))
    stdout.print(variables)
    stdout.print(usage_table(values.get("total_usage", {})))
    snapshot = values.get("repl", {}).get("snapshot")
    stored = f"{values.get('snapshot_bytes', 0):,} bytes beyond the contexts"
    for line in (
        f"last question: {values.get('query') or '(none)'}",
        f"steps in the last question: {values.get('iteration', 0)}; ended by {values.get('stop_reason')}",
        f"usage (whole thread): {usage_line(values.get('total_usage', {}))}",
        f"REPL snapshot: {snapshot[:16]} ({stored})" if snapshot else "REPL snapshot: (none yet)",
    ):
        stdout.print(literal(line))


def usage_table(usage: dict[str, Any]) -> Table:
    """The thread's usage by depth and model; cost is unknown, not $0, for a model litellm does
    not price."""
    table = Table("depth", "model", "calls", "tokens in", "tokens out", "cost", "cache hits")
    table.title, table.title_justify = "usage by depth and model (whole thread)", "left"
    table.columns[1].overflow = "fold"
    for key, entry in sorted(usage.get("by_model", {}).items()):
        depth, model = key.split(":", 1)
        cost = "unknown" if entry["cost"] is None else f"${entry['cost']:.4f}"
        numbers = (entry["calls"], entry["input_tokens"], entry["output_tokens"])
        table.add_row(depth, literal(model), *(f"{n:,}" for n in numbers), cost, f"{entry['cache_hits']:,}")
    return table


def where(settings: RLMSettings) -> str:
    """Where threads are kept, without printing a database password."""
    return "the database" if settings.db else settings.state_dir
