"""The `rlm` command's config files: defaults without long flags.

The user's file ($XDG_CONFIG_HOME/rlm/config.toml) applies as written. A project's file (`.rlm.toml`
in the working directory or the nearest folder above it) comes with whatever was cloned, so, as
direnv does, it applies only once the user has allowed that exact content: until then a clone
could send the user's key to its own endpoint, move the store, pick the sandbox or open folders
to the REPL. Once allowed it may set every setting, those included: the user read it (`rlm config
allow` lists what it sets), and a team's shared endpoint or store is what such a file is for.
Keys are the settings' names (`sub_model`, `max_iterations`); a relative path in a file means the
file's folder. Only the CLI reads these files: the Python API and a LangGraph server take their
settings from code and `RLM_*` variables.
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any

import tomli_w

from langgraph_rlm.graph.config import Layer, Origin, RLMSettings, parse_setting, typed_setting

PROJECT_FILE = ".rlm.toml"
SETTABLE = {spec.name: spec for spec in fields(RLMSettings) if spec.metadata["flag"]}


class ConfigFileError(ValueError):
    """A config file that cannot be used; the message names the file (and the key)."""


def user_dir() -> Path:
    configured = os.environ.get("XDG_CONFIG_HOME", "")
    base = Path(configured) if os.path.isabs(configured) else Path.home() / ".config"
    return base / "rlm"


def user_file() -> Path:
    return user_dir() / "config.toml"


def allowed_file() -> Path:
    """The project files the user allowed, each with the hash of the content allowed."""
    return user_dir() / "allowed-projects.toml"


def project_file() -> Path | None:
    here = Path.cwd()
    return next((d / PROJECT_FILE for d in (here, *here.parents) if (d / PROJECT_FILE).is_file()), None)


def setting_name(key: str) -> str:
    name = key.replace("-", "_")
    if name not in SETTABLE:
        raise ConfigFileError(f"unknown setting {key!r} (`rlm config list` shows them all)")
    return name


def read_table(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigFileError(f"{path}: cannot read it ({getattr(exc, 'strerror', None) or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError(f"{path}: not valid TOML ({exc})") from None


def file_layer(path: Path) -> Layer:
    layer = Layer({}, {})
    for key, value in read_table(path).items():
        try:
            name = setting_name(key)
        except ConfigFileError as exc:
            raise ConfigFileError(f"{path}: {exc}") from None
        try:
            checked = typed_setting(name, value)
        except ValueError as exc:
            raise ConfigFileError(f"{path}: {key} {exc}") from None
        if SETTABLE[name].metadata["path"] and checked:
            checked = within(path.parent, checked)
        layer.values[name] = checked
        layer.origins[name] = Origin(str(path), f"{path}: {key}")
    return layer


def within(folder: Path, value: str | tuple[str, ...]) -> str | tuple[str, ...]:
    if isinstance(value, tuple):
        return tuple(str(folder / os.path.expanduser(item)) for item in value)
    return str(folder / os.path.expanduser(value))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def trust(path: Path) -> str:
    """'allowed', 'new' (never allowed) or 'changed' (allowed with other content)."""
    recorded = read_table(allowed_file()).get(str(path.resolve()))
    if recorded is None:
        return "new"
    return "allowed" if recorded == digest(path) else "changed"


def allow(path: Path) -> None:
    allowed = read_table(allowed_file())
    allowed[str(path.resolve())] = digest(path)
    write_table(allowed_file(), allowed)


def file_layers() -> tuple[list[Layer], list[str]]:
    """The user's file, then the project's if it is allowed; a warning for one that is not."""
    layers = [file_layer(user_file())]
    project = project_file()
    if project is None:
        return layers, []
    state = trust(project)
    if state == "allowed":
        return [*layers, file_layer(project)], []
    why = "is not allowed yet" if state == "new" else "changed since it was allowed"
    return layers, [f"{project} {why}, so it is ignored; read it, then run `rlm config allow` to use it"]


def set_value(path: Path, key: str, raw: str) -> Any:
    """Stores a setting given as text (a path as an absolute one: what the user typed meant the
    working directory); returns the value stored."""
    name = setting_name(key)
    try:
        value = parse_setting(name, raw, key)
    except ValueError as exc:
        raise ConfigFileError(str(exc)) from None
    if SETTABLE[name].metadata["path"] and value:
        value = tuple(map(os.path.abspath, value)) if isinstance(value, tuple) else os.path.abspath(value)
    if value is None:
        raise ConfigFileError(f"{key} cannot be set empty; `rlm config unset {key}` goes back to the default")
    table = read_table(path)
    table[name] = list(value) if isinstance(value, tuple) else value
    write_settings(path, table)
    return value


def unset_value(path: Path, key: str) -> bool:
    name = setting_name(key)
    table = read_table(path)
    if name not in table:
        return False
    del table[name]
    write_settings(path, table)
    return True


def write_settings(path: Path, table: dict[str, Any]) -> None:
    """A project file the user had allowed stays allowed after their own change, and so does a
    new one: every line of it is theirs."""
    keep = path.name == PROJECT_FILE and (not path.exists() or trust(path) == "allowed")
    write_table(path, table)
    if keep:
        allow(path)


def write_table(path: Path, table: dict[str, Any]) -> None:
    """Through a temporary file, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(tomli_w.dumps(table), encoding="utf-8")
    temporary.replace(path)
