"""The `rlm` command: questions about files too large for any model, answered from a REPL.

The answer goes to stdout and nothing else does; progress goes to stderr. Every thread is kept
in a SQLite file under the state directory, REPL included, so `--thread NAME` picks up where
any earlier run left off.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import stat
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
from langgraph_rlm.extras import MissingExtra
from langgraph_rlm.graph.config import (
    POSITIVE_SETTINGS,
    SANDBOXES,
    Layer,
    Origin,
    RLMSettings,
    environment_layer,
    layered,
)
from langgraph_rlm.progress import Progress, cost_text, intro, usage_line
from langgraph_rlm.terminal import literal, write_answer

DEFAULT_THREAD = "default"
BENCH_THREADS = "bench-"
"""How `rlm bench` names its runs' threads: `rlm threads` leaves them out unless asked."""
T = TypeVar("T")
EXIT_ANSWERED = 0
"""An answer from FINAL, on stdout."""
EXIT_FAILED = 1
"""A failure none of the statuses below names."""
EXIT_USAGE = 2
"""Bad input: a flag, a file, a setting; nothing was asked."""
EXIT_LIMIT = 3
"""A limit ended the question first; stdout has the model's best answer, stderr names the limit."""
EXIT_NO_ANSWER = 4
"""The question ended without an answer: stdout is empty."""
EXIT_MODEL_FAILED = 5
"""The root model could not be reached or failed for good; the thread resumes when asked again."""
EXIT_SANDBOX_FAILED = 6
"""The sandbox could not start or was lost; the thread resumes when asked again."""
EXIT_BUSY = 7
"""Another run held the thread past --wait; nothing was asked, the thread is as that run leaves it."""
DEFAULT_WAIT = 30.0
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143
"""Ctrl-C, SIGTERM: the thread is saved up to its last step."""
STOPPED_BY = {EXIT_INTERRUPTED: "interrupted", EXIT_TERMINATED: "terminated"}
FLAG_NAMES = {
    "approve_code": "approve",
    "allow_dirs": "allow-dir",
    "allowed_models": "allow-model",
    "depth_models": "depth-model",
    "model_prices": "model-price",
}
METAVARS = {"allowed_models": "MODEL", "depth_models": "MODEL", "model_prices": "MODEL=IN,OUT"}
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


def wait_options(command: Callable) -> Callable:
    """How long a run waits for a thread another run holds (persistence.leases)."""
    command = click.option(
        "--no-wait", is_flag=True, help="Fail at once (status 7) if another run holds the thread."
    )(command)
    return click.option(
        "--wait",
        type=click.FloatRange(min=0),
        default=DEFAULT_WAIT,
        show_default=True,
        metavar="SECONDS",
        help="How long to wait for a thread another run holds before giving up (status 7).",
    )(command)


def quiet_option(command: Callable) -> Callable:
    return click.option("--quiet", "-q", is_flag=True, help="No progress on stderr.")(command)


def setting_flags(command: Callable) -> Callable:
    """One flag per setting, with the setting's description and environment variable as help."""
    for spec in reversed(fields(RLMSettings)):
        if not spec.metadata.get("flag"):
            continue
        name = flag_of(spec.name)[2:]
        default = spec.metadata["default"]
        shown = default if default not in (None, ()) else "none"
        help_text = f"{spec.metadata['description']} [env {spec.metadata['env']}; default {shown}]"
        if isinstance(default, bool):
            option = click.option(f"--{name}/--no-{name}", spec.name, default=None, help=help_text)
        elif isinstance(default, tuple):
            option = click.option(
                f"--{name}", spec.name, multiple=True, metavar=METAVARS.get(spec.name, "DIR"), help=help_text
            )
        elif spec.name == "sandbox":
            option = click.option(f"--{name}", spec.name, type=click.Choice(SANDBOXES), help=help_text)
        else:
            kind = {int: int, float: float}.get(type(default), str)
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
    return layered_settings(options)[0]


def layered_settings(options: dict[str, Any]) -> tuple[RLMSettings, dict[str, Origin]]:
    """Flags win over RLM_* variables, over an allowed project file, over the user's file, over the
    defaults (config_files). The CLI's user names the files to read, so contexts given as paths
    are read wherever they are."""
    from langgraph_rlm.config_files import file_layers

    try:
        files, warnings = file_layers()
        settings, origins = layered([*files, environment_layer(), flag_layer(options)])
    except ValueError as exc:
        raise UserError(str(exc)) from None
    for warning in warnings:
        note(f"warning: {warning}", "yellow")
    settings.path_contexts = True
    problem = settings_problem(settings, origins)
    if problem:
        raise UserError(problem)
    return settings, origins


def flag_layer(options: dict[str, Any]) -> Layer:
    layer = Layer({}, {})
    for spec in fields(RLMSettings):
        value = options.get(spec.name)
        if value is not None and value != ():
            layer.values[spec.name] = tuple(value) if isinstance(value, (list, tuple)) else value
            layer.origins[spec.name] = Origin(flag_of(spec.name), flag_of(spec.name))
    return layer


def flag_of(name: str) -> str:
    return f"--{FLAG_NAMES.get(name, name.replace('_', '-'))}"


def settings_problem(settings: RLMSettings, origins: dict[str, Origin]) -> str | None:
    for name in POSITIVE_SETTINGS:
        if getattr(settings, name) <= 0:
            return f"{origins[name].label} must be greater than 0"
    if settings.sandbox not in SANDBOXES:
        return f"{origins['sandbox'].label} must be one of {', '.join(SANDBOXES)}, not {settings.sandbox!r}"
    for folder in settings.allow_dirs:
        if not Path(folder).is_dir():
            return f"{origins['allow_dirs'].label} {folder}: not a directory"
    if settings.system_prompt_file:
        from langgraph_rlm.prompts import PromptFileError, system_template

        try:
            system_template(settings.system_prompt_file)
        except PromptFileError as exc:
            return str(exc)
    from langgraph_rlm.llm.usage import parse_prices

    try:
        parse_prices(settings.model_prices)
    except ValueError as exc:
        return f"{origins['model_prices'].label} {exc}"
    return None


def handle_errors(command: Callable) -> Callable:
    """Turns every failure into one line on stderr and an exit code."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except click.ClickException:
            raise
        except MissingExtra as exc:
            raise UserError(str(exc)) from None
        except (KeyboardInterrupt, signals.Stopped) as exc:
            code = getattr(exc, "exit_code", EXIT_INTERRUPTED)
            stderr.print(f"[yellow]{STOPPED_BY[code]}[/]; the thread is saved up to its last step")
            sys.exit(code)
        except Exception as exc:
            if os.environ.get("RLM_DEBUG"):
                raise
            say_error(one_line(exc))
            sys.exit(failure_status(exc))

    return run


def failure_status(exc: Exception) -> int:
    """Which part failed: the model, the sandbox, or something else."""
    from langgraph_rlm.llm.root import ModelCallFailed
    from langgraph_rlm.persistence.leases import ThreadBusy
    from langgraph_rlm.sandboxes.base import SandboxLost, SandboxUnavailable, WorkerDied

    if isinstance(exc, ThreadBusy):
        return EXIT_BUSY
    if isinstance(exc, ModelCallFailed):
        return EXIT_MODEL_FAILED
    if isinstance(exc, (SandboxLost, SandboxUnavailable, WorkerDied)):
        return EXIT_SANDBOX_FAILED
    return EXIT_FAILED


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """A command's coroutine starts once its imports are done."""
    collector.imported()
    return signals.run(coroutine)


def say_error(message: str) -> None:
    stderr.print(Text.assemble(("error:", "red"), " ", literal(message)), soft_wrap=True)


def warn(message: str) -> None:
    note(f"warning: {message}", "yellow")


def note(text: str, style: str = "") -> None:
    """One line on stderr, however narrow the terminal: a path in it stays whole."""
    stderr.print(literal(text, style), soft_wrap=True)


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
    quiet_library_warnings()


def quiet_library_warnings() -> None:
    """psycopg warns of a pipeline it could not close once PostgreSQL went away (a restart): a
    line beside the one that says the run failed."""
    logging.getLogger("psycopg").setLevel(logging.CRITICAL)


context_option = click.option(
    "--context",
    "-c",
    "contexts",
    multiple=True,
    metavar="PATH",
    help="A file, a folder (its text files) or - for stdin, to ask about (repeatable).",
)


@main.command()
@click.argument("question")
@context_option
@settings_options
@wait_options
@handle_errors
def run(
    question: str,
    contexts: tuple[str, ...],
    thread: str,
    quiet: bool,
    wait: float,
    no_wait: bool,
    **options: Any,
) -> None:
    """Answer QUESTION about the --context files (and text piped in); the answer alone goes to
    stdout, as soon as it is recorded (the turn's summary comes after). The exit status says how
    the question ended (README: exit statuses)."""
    progress = Progress(stderr, quiet)
    if piped_stdin() and not any(reads_stdin(item) for item in contexts):
        contexts = (*contexts, PIPED)
    try:
        settings, paths = prepare(question, contexts, options, thread, progress)
        answer = run_async(ask(question, paths, settings, thread, progress, 0.0 if no_wait else wait))
    finally:
        progress.close()
    status = answer.conclude()
    if status != EXIT_ANSWERED:
        sys.exit(status)


@main.command()
@context_option
@settings_options
@wait_options
@handle_errors
def chat(
    contexts: tuple[str, ...], thread: str, quiet: bool, wait: float, no_wait: bool, **options: Any
) -> None:
    """An interactive conversation; every turn is saved to the thread as it ends."""
    if any(reads_stdin(item) for item in contexts):
        raise UserError("chat reads its questions from stdin, so a context cannot come from it")
    progress = Progress(stderr, quiet)
    try:
        settings, paths = prepare("chat", contexts, options, thread, progress)
    finally:
        progress.close()
    said = intro(str(settings.root_model()), settings.api_base, settings.sandbox, thread)
    stderr.print(literal(f"{said} · /help for commands, /quit or Ctrl-D to leave", "dim"))
    given = paths
    while True:
        try:
            question = stderr.input("[bold green]you>[/] ").strip()
        except EOFError:
            return
        if question.startswith("/"):
            command = chat_command(question, settings, thread)
            if command == "/quit":
                return
            paths = given if command == "/reset" else paths
            continue
        if not question:
            continue
        progress = Progress(stderr, quiet)
        progress.begin(f"asking {settings.root_model()}", keep=False)
        try:
            run_async(ask(question, paths, settings, thread, progress, 0.0 if no_wait else wait)).conclude()
        finally:
            progress.close()
        paths = []


CHAT_COMMANDS = {
    "/help": "this list",
    "/status": "the thread's contexts, REPL variables, steps and cost (rlm status)",
    "/trace [PATH]": "write the thread's trajectory as a web page (rlm trace --html)",
    "/reset": "forget the thread; the next question starts afresh with the --context files (rlm reset)",
    "/quit, /exit": "leave (Ctrl-D too)",
}


def chat_command(line: str, settings: RLMSettings, thread: str) -> str:
    """Runs one of CHAT_COMMANDS, never sent to the model; returns its name (/quit for both ways
    out). A failure is one line, and the chat goes on."""
    name, _, argument = line.partition(" ")
    name = "/quit" if name == "/exit" else name
    try:
        if name == "/help":
            for usage, what in CHAT_COMMANDS.items():
                stderr.print(literal(f"{usage:<14} {what}"))
        elif name == "/status":
            show_thread(settings, thread)
        elif name == "/trace":
            path = Path(argument.strip() or default_trace(settings, thread)).resolve()
            write_trace(settings, thread, str(path), None)
            stderr.print(literal(f"trace written to {path}"), soft_wrap=True)
        elif name == "/reset":
            forget_thread(settings, thread)
        elif name != "/quit":
            say_error(f"unknown command {name}; /help lists the commands")
    except click.ClickException as exc:
        say_error(exc.format_message())
    return name


def default_trace(settings: RLMSettings, thread: str) -> Path:
    """Beside the thread, in the state dir, named after it."""
    folder = Path(settings.state_dir) / "traces"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / (re.sub(r"[^\w.-]", "_", thread) + ".html")


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--thread", default=DEFAULT_THREAD, show_default=True, help="Conversation to add the files to.")
@store_options
@handle_errors
def init(paths: tuple[str, ...], thread: str, **store: str | None) -> None:
    """Store PATHS as contexts of a thread before asking anything."""
    from langgraph_rlm.threads import add_contexts

    settings = build_settings(store)
    added = run_async(add_contexts(settings, thread, stored_contexts(paths, settings, quiet=False), warn))
    for ref in added:
        stderr.print(literal(f"{ref['name']}: {ref['label']} ({ref['size']:,} bytes)"))
    stderr.print(literal(f"{len(added)} new context(s) in thread {thread}", "dim"))


@main.command()
@click.option("--thread", default=DEFAULT_THREAD, show_default=True, help="Conversation to show.")
@store_options
@handle_errors
def status(thread: str, **store: str | None) -> None:
    """Show a thread's contexts, REPL variables, steps, tokens and cost."""
    show_thread(build_settings(store), thread)


def show_thread(settings: RLMSettings, thread: str) -> None:
    """`rlm status`, and chat's /status."""
    from langgraph_rlm.threads import thread_values

    values = run_async(thread_values(settings, thread))
    if values is None:
        raise UserError(f"no thread named {thread!r} in {where(settings)}")
    show_status(thread, values)


@main.command()
@click.option("--all", "everything", is_flag=True, help="Also list the benchmarks' threads (bench-*).")
@store_options
@handle_errors
def threads(everything: bool, **store: str | None) -> None:
    """List the threads, oldest first, with their last question. An unfinished one stopped
    mid-question (ask it again to resume it); a broken one's last checkpoint cannot be read."""
    from langgraph_rlm.threads import list_threads

    settings = build_settings(store)
    rows, hidden = run_async(list_threads(settings, None if everything else BENCH_THREADS))
    table = Table("thread", "state", "last question", "contexts", "steps", "usage", "updated")
    table.title, table.title_justify = f"threads in {where(settings)}", "left"
    table.columns[0].no_wrap = True
    for row in rows:
        usage = row.get("total_usage", {})
        calls = usage.get("root_calls", 0) + usage.get("sub_calls", 0)
        cells = (
            row["thread"],
            "broken" if row.get("broken") else "unfinished" if row["unfinished"] else "",
            row["broken"] if row.get("broken") else (row.get("query") or "")[:60],
            sum(isinstance(c, dict) for c in row.get("contexts", [])),
            row.get("iteration", 0),
            f"{calls} calls, {cost_text(usage)}",
            row["ts"][:19].replace("T", " "),
        )
        table.add_row(*map(literal, cells))
    stdout.print(table if rows else literal(f"no threads yet in {where(settings)}"))
    if hidden:
        note = f"{hidden} benchmark thread(s) not shown ({BENCH_THREADS}*; --all lists them)"
        stderr.print(literal(note, "dim"))


@main.command()
@click.option("--thread", required=True, help="The thread to forget.")
@store_options
@handle_errors
def reset(thread: str, **store: str | None) -> None:
    """Forget a thread: its checkpoints go, and stored blobs nothing else refers to."""
    forget_thread(build_settings(store), thread)


def forget_thread(settings: RLMSettings, thread: str) -> None:
    """`rlm reset`, and chat's /reset."""
    from langgraph_rlm.threads import reset_thread

    done = run_async(reset_thread(settings, thread, warn))
    if done is None:
        raise UserError(f"no thread named {thread!r} in {where(settings)}")
    collected = f"{done.blobs} blob(s) collected, {done.bytes:,} bytes freed"
    if done.unreadable:
        unknown = ", ".join(sorted(done.unreadable))
        collected = f"no blob collected, since a checkpoint of thread(s) {unknown} cannot be read"
    stderr.print(literal(f"thread {thread} reset; {collected}"), soft_wrap=True)


@main.command()
@click.option("--thread", default=DEFAULT_THREAD, show_default=True, help="The thread to move back.")
@click.option(
    "--to",
    "checkpoint",
    metavar="CHECKPOINT",
    help="The checkpoint to go back to; without it, the newest one that loads.",
)
@store_options
@handle_errors
def rewind(thread: str, checkpoint: str | None, **store: str | None) -> None:
    """Go back to an earlier checkpoint of a thread, such as the one a warning named when a new
    question left an unfinished one behind: ask that question again to resume it. Without --to,
    a thread whose newest checkpoint cannot be loaded goes back to the newest one that can.
    Nothing is deleted; the later turns stay in the thread's checkpoints."""
    from langgraph_rlm.threads import UnknownCheckpoint, has_threads, rewind_thread, unfinished

    settings = build_settings(store)
    if not has_threads(settings):
        raise UserError(f"no thread named {thread!r} in {where(settings)}")
    try:
        head = run_async(rewind_thread(settings, thread, checkpoint, warn))
    except UnknownCheckpoint as exc:
        raise UserError(f"{exc} in {where(settings)}") from None
    if head is None:
        stderr.print(literal(f"thread {thread} loads as it is: nothing to go back to"), soft_wrap=True)
        return
    where_now = "unfinished: ask it again to resume it" if unfinished(head) else "answered"
    question = head.values.get("query") or "(none)"
    said = f"thread {thread} is back at the question {question!r} ({where_now})"
    stderr.print(literal(said), soft_wrap=True)


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
    if not html_path and not jsonl_path:
        raise UserError("give --html PATH, --jsonl PATH, or both")
    write_trace(build_settings(store), thread, html_path, jsonl_path)


def write_trace(settings: RLMSettings, thread: str, html_path: str | None, jsonl_path: str | None) -> None:
    """`rlm trace`, and chat's /trace."""
    from langgraph_rlm.trajectory.jsonl import to_jsonl
    from langgraph_rlm.trajectory.page import to_html
    from langgraph_rlm.trajectory.reader import read_trajectory

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
    """Report each setting and where it came from, which sandboxes start here (each really started,
    as a run starts it) and which model credentials are present; fails when the configured sandbox
    cannot run (or, with --models, a model does not answer)."""
    from langgraph_rlm.doctor import all_checks, credential_names

    settings, origins = layered_settings(options)
    stdout.print(settings_table(settings, origins))
    checks = run_async(all_checks(settings, models))
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
def config() -> None:
    """Defaults without long flags, in your config file ($XDG_CONFIG_HOME/rlm/config.toml) or a
    project's .rlm.toml (applied once you allow it); flags win over RLM_* variables, over the
    project's file, over yours, over the defaults."""


def project_option(command: Callable) -> Callable:
    return click.option(
        "--project",
        is_flag=True,
        help="The project's .rlm.toml (here or in the nearest folder above) instead of your own file.",
    )(command)


def chosen_file(project: bool) -> Path:
    from langgraph_rlm.config_files import PROJECT_FILE, project_file, user_file

    return (project_file() or Path.cwd() / PROJECT_FILE) if project else user_file()


@config.command("set")
@click.argument("key")
@click.argument("value")
@project_option
@handle_errors
def config_set(key: str, value: str, project: bool) -> None:
    """Set KEY (a setting's name: model, sub_model, api_base, sandbox, max_iterations, ...) to VALUE."""
    from langgraph_rlm.config_files import set_value, setting_name, trust

    path = chosen_file(project)
    try:
        stored = set_value(path, key, value)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    note(f"{setting_name(key)} = {shown(stored)} in {path}", "dim")
    if project and trust(path) != "allowed":
        note(f"warning: {path} is not allowed yet: `rlm config allow` applies it", "yellow")


@config.command("unset")
@click.argument("key")
@project_option
@handle_errors
def config_unset(key: str, project: bool) -> None:
    """Remove KEY from the file: the next layer down (or the default) applies again."""
    from langgraph_rlm.config_files import unset_value

    path = chosen_file(project)
    try:
        removed = unset_value(path, key)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    note(f"{key} {'removed from' if removed else 'was not set in'} {path}", "dim")


@config.command("get")
@click.argument("key")
@handle_errors
def config_get(key: str) -> None:
    """Print KEY's effective value (stdout) and where it came from (stderr)."""
    from langgraph_rlm.config_files import setting_name

    try:
        name = setting_name(key)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    settings, origins = layered_settings({})
    stdout.print(literal(shown(getattr(settings, name))))
    note(f"from {origins[name].source}", "dim")


@config.command("list")
@handle_errors
def config_list() -> None:
    """Every setting's effective value and where it came from."""
    stdout.print(settings_table(*layered_settings({})))


@config.command("allow")
@handle_errors
def config_allow() -> None:
    """Allow the project's .rlm.toml as it is now: it applies until its content changes."""
    from langgraph_rlm.config_files import allow, file_layer, project_file

    path = project_file()
    if path is None:
        raise UserError("no .rlm.toml here or in any folder above")
    try:
        layer = file_layer(path)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    allow(path)
    for name, value in layer.values.items():
        note(f"{name} = {shown(value)}")
    note(f"{path} allowed: it applies until it changes", "dim")


def settings_table(settings: RLMSettings, origins: dict[str, Origin]) -> Table:
    table = Table("setting", "value", "from", title="settings", title_justify="left")
    table.columns[1].overflow = table.columns[2].overflow = "fold"
    for spec in fields(RLMSettings):
        if spec.metadata["flag"]:
            value, origin = shown(getattr(settings, spec.name)), origins[spec.name].source
            table.add_row(spec.name, literal(value), literal(origin))
    return table


def shown(value: Any) -> str:
    """A setting's value for people; a password in a URL (--db) is not shown."""
    from urllib.parse import urlsplit

    if value in (None, ()):
        return "none"
    if isinstance(value, tuple):
        return ", ".join(value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str) and "://" in value and (password := urlsplit(value).password):
        return value.replace(f":{password}@", ":***@", 1)
    return str(value)


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
    try:
        check_available(settings.sandbox)
    except SandboxUnavailable as exc:
        raise UserError(str(exc)) from None
    if settings.approve_code and not sys.stdin.isatty():
        raise UserError(
            "--approve asks on the terminal, and stdin is not one (approve through the SDK instead)"
        )
    paths = stored_contexts(contexts, settings, progress.quiet)
    progress.begin(intro(str(settings.root_model()), settings.api_base, settings.sandbox, thread))
    check_credentials(settings)
    warn_unheld_cost_cap(settings)
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


STDIN = "/dev/stdin"
PIPED = ""
"""Stands for stdin when it was not named but text was piped in: an empty pipe then adds nothing."""


def piped_stdin() -> bool:
    """Text piped or redirected in is a context; a terminal or /dev/null on stdin is not."""
    try:
        mode = os.fstat(0).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISREG(mode) or stat.S_ISSOCK(mode)


def reads_stdin(item: str) -> bool:
    return item in ("-", PIPED, STDIN, "/dev/fd/0", "/proc/self/fd/0")


def stored_contexts(items: tuple[str, ...], settings: RLMSettings, quiet: bool) -> list[Any]:
    """Reads and stores what --context names (- is stdin) before anything is asked, so a bad
    one costs no model call; the graph gets the references, and names them."""
    from langgraph_rlm.persistence.blobs import shared_blob_store
    from langgraph_rlm.persistence.contexts import (
        ContextError,
        Intake,
        check_context_path,
        file_ref,
        ingest_path,
        unnamed,
    )

    def say(message: str) -> None:
        if not quiet:
            stderr.print(literal(message, "dim"))

    def warned(message: str) -> None:
        if not quiet:
            warn(message)

    blobs = shared_blob_store(settings.db, settings.state_dir)
    intake = Intake(warn=warned, say=say, folder_limit_mb=settings.max_folder_mb)
    refs = []
    try:
        for item in items:
            if item == PIPED:
                piped = file_ref(Path(STDIN), "stdin", "", blobs, intake)
                refs += [piped] if piped["size"] else []
            else:
                path = check_context_path(STDIN if reads_stdin(item) else item)
                refs += ingest_path(path, 0, blobs, intake)
    except ContextError as exc:
        raise UserError(str(exc)) from None
    return unnamed(refs)


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


def warn_unheld_cost_cap(settings: RLMSettings) -> None:
    """A cost cap counts only the dollars it can price; said before the run, not after the spend."""
    from langgraph_rlm.llm.usage import give_prices, unit_prices

    if settings.max_cost <= 0:
        return
    give_prices(settings.model_prices)
    unpriced = sorted(model for model in settings.model_names() if unit_prices(model) is None)
    if unpriced:
        stderr.print(
            literal(
                f"warning: --max-cost ${settings.max_cost:g} cannot hold: litellm has no price for "
                f"{', '.join(unpriced)}, whose calls then count as $0; give one with --model-price "
                "MODEL=IN,OUT (dollars per million input and output tokens)",
                "yellow",
            ),
            soft_wrap=True,
        )


class Answer:
    """The answer on stdout once, the moment the graph records it, before the turn's summary;
    the end of the question decides the exit status."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.finish = progress.finish
        self.text: str | None = None
        self.stop_reason: str | None = None

    def __call__(self, event: dict[str, Any]) -> None:
        self.progress(event)
        if event.get("event") == "answer" and self.text is None:
            self.text, self.stop_reason = event["answer"], event["stop_reason"]
            if self.text.strip():
                write_answer(self.text, sys.stdout)

    def conclude(self) -> int:
        """Says on stderr what stdout's answer is, when it is not FINAL's, and returns the status."""
        reason = self.stop_reason or "final"
        if not (self.text or "").strip():
            ended = "the model's FINAL was empty" if reason == "final" else f"the run stopped at {reason}"
            say_error(f"no answer: {ended}; stdout is empty")
            return EXIT_NO_ANSWER
        if reason != "final":
            note = f"note: the run stopped at {reason}; stdout has the model's best answer, not a FINAL one"
            stderr.print(literal(note, "yellow"), soft_wrap=True)
            return EXIT_LIMIT
        return EXIT_ANSWERED


async def ask(
    question: str, paths: list[str], settings: RLMSettings, thread: str, progress: Progress, wait: float
) -> Answer:
    from langgraph_rlm.approver import TerminalApprover
    from langgraph_rlm.llm.root import ModelCallFailed
    from langgraph_rlm.sandboxes.base import SandboxLost
    from langgraph_rlm.threads import UnfinishedTurn, run_turn

    approver = TerminalApprover(stderr) if settings.approve_code else None
    progress.show_code = approver is None
    answer = Answer(progress)
    try:
        await run_turn(settings, thread, question, paths, answer, approver, wait)
        return answer
    except UnfinishedTurn as exc:
        raise UserError(str(exc)) from None
    except EOFError:
        raise UserError("no answer to the approval prompt; ask the same question again to resume") from None
    except ModelCallFailed as exc:
        raise ModelCallFailed(f"{exc}; {RESUME_HINT}") from None
    except SandboxLost as exc:
        raise SandboxLost(
            f"the run stopped, its thread saved up to the last step ({RESUME_HINT}): {exc}"
        ) from None


RESUME_HINT = "ask the same question again to resume it"


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
