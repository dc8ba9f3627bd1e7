"""The REPL worker: the one program that runs inside every sandbox.

It holds the model's Python namespace and talks to the host over one framed channel
(a JSON line per message; `nbytes` raw bytes follow a header that names them). The host
is the only way out: model calls, files and large values all travel as requests on it,
so the sandbox needs no network, no key and no view of the host's files.

Standard library only (cloudpickle when the host puts it on the path), Python 3.9+, and no
imports from the package, because it runs on interpreters the package is not installed in.
"""

import argparse
import ast
import collections
import fcntl
import hashlib
import io
import itertools
import json
import linecache
import math
import mmap
import os
import pickle
import queue
import re
import resource
import signal
import sys
import threading
import time
import traceback
import types

import protocol

try:
    import cloudpickle

    PICKLER_NAME = "cloudpickle"
    _BasePickler = cloudpickle.Pickler
except ImportError:  # by-value functions and classes are then reported as not kept
    PICKLER_NAME = "pickle"
    _BasePickler = pickle.Pickler

WORKER_FILE = os.path.abspath(__file__)
BIG_VALUE = 1 << 20
MAIN_PID = os.getpid()
META_NAME = "(the file registry)"
SIZED_TYPES = (str, bytes, bytearray, list, tuple, dict, set, frozenset)
"""Sizes are shown for these alone: a model's own __len__ could hang or lie."""
OUTPUT_KEEP = 16 << 20
PUNCH_HOLE = 0x03  # FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
GREP_COUNT_LIMIT = 1_000_000
GREP_RETURN_LIMIT = 100_000
GREP_SHOWN = 20
BLIND_PROMPT = 300
BLIND_PROMPT_NOTE = (
    "Note: llm_query's model sees only the prompt you pass it, not `context` or your variables: "
    "put the text it should read into the prompt, "
    "e.g. llm_query('List the dates in this text: ' + chunk)."
)
PIPE_BYTES = 1 << 20
"""The channel's pipe capacity: a 1 GB context crosses in half the time of the default 64 KiB."""


class CellTimeout(BaseException):
    """Raised in the cell by the alarm; a BaseException so `except Exception` cannot swallow it."""


class LLMQueryError(RuntimeError):
    """A sub-model call that failed on the host."""


# --- the channel -------------------------------------------------------------------------


class Channel:
    """Frames over two file descriptors that user code and child processes never see."""

    def __init__(self, rfd, wfd, blob_pipe=None):
        for fd in (rfd, wfd):
            _widen_pipe(fd)
        self._in = os.fdopen(rfd, "rb")
        self._blobs_in = _open_blob_pipe(blob_pipe) if blob_pipe else None
        self._out = os.fdopen(wfd, "wb")
        self._write_lock = threading.Lock()
        self._pending = {}
        self._pending_lock = threading.Lock()
        self._counter = 0
        self.commands = queue.Queue()

    def send(self, message, data=None):
        if os.getpid() != MAIN_PID:
            raise RuntimeError("the host channel is not available in a child process")
        frame = protocol.encode(message, data)
        with self._write_lock:
            self._out.write(frame)
            self._out.flush()

    def start_request(self, message, data=None):
        with self._pending_lock:
            self._counter += 1
            request_id = "w%d" % self._counter
            slot = [threading.Event(), None, None]
            self._pending[request_id] = slot
        self.send(dict(message, id=request_id), data)
        return slot

    @staticmethod
    def wait(slot):
        slot[0].wait()
        return slot[1], slot[2]

    def request(self, message, data=None):
        return self.wait(self.start_request(message, data))

    def read_forever(self):
        """Reader thread: answers go to their waiting requests, commands to the main loop."""
        while True:
            line = self._in.readline()
            if not line:
                self.commands.put({"op": "shutdown"})
                return
            message = json.loads(line)
            data = self._in.read(message["nbytes"]) if "nbytes" in message else None
            if "piped" in message:
                data = self._blobs_in.read(message["piped"])
            if message["op"] in ("reply", "blob"):
                with self._pending_lock:
                    slot = self._pending.pop(message["id"], None)
                if slot is not None:
                    slot[1], slot[2] = message, data
                    slot[0].set()
            else:
                self.commands.put(dict(message, data=data))


def _widen_pipe(fd):
    """Best effort: a socket, an old kernel or a lower pipe-max-size keeps the default."""
    try:
        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_BYTES)
    except OSError:
        pass


def _open_blob_pipe(path):
    """The side pipe a docker host sends blobs on, opened at once so the host finds a reader;
    without it (a daemon on another machine mounts no FIFO) the host sends them on the channel."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
    _widen_pipe(fd)
    return os.fdopen(fd, "rb")


# --- large values stored by content -------------------------------------------------------


class BlobCache:
    """Large strings and bytes the host already stores, so a snapshot sends only what changed."""

    def __init__(self, channel):
        self.channel = channel
        self.by_id = {}
        self.host_has = set()
        self.used = set()

    def remember(self, value, sha):
        self.by_id[id(value)] = (value, sha)
        self.host_has.add(sha)

    def holds(self, value):
        """Whether `value` is this very object the host stores (a context, a value loaded by
        hash), so a snapshot refers to it whatever its size instead of pickling it again."""
        known = self.by_id.get(id(value))
        return known is not None and known[0] is value

    def sha_of(self, value):
        if self.holds(value):
            sha = self.by_id[id(value)][1]
        else:
            raw = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value
            sha = self.store(bytes(raw))
            self.remember(value, sha)
        self.used.add(sha)
        return sha

    def store(self, data):
        """Sends bytes the host does not have yet; returns their hash."""
        sha = hashlib.sha256(data).hexdigest()
        if sha not in self.host_has:
            self.channel.send({"op": "put_blob", "sha": sha}, data)
            self.host_has.add(sha)
        return sha

    def fetch(self, sha, kind):
        """A large value by hash: from memory when this worker holds it already."""
        for value, known in self.by_id.values():
            if known == sha and isinstance(value, str) == (kind == "str"):
                return value
        value = self.read(sha, kind)
        self.remember(value, sha)
        return value

    def read(self, sha, kind):
        """A stored blob as `kind` ("str" or "bytes"). One the host bound into the sandbox is
        mapped, so a 1 GB context is decoded straight from the file into its str: no copy on the
        channel, no bytes object beside the str. The host names the path; a path that will not
        map (a Docker daemon on another machine binds nothing there) costs a second request."""
        reply, data = self.channel.request({"op": "get_blob", "sha": sha})
        if reply.get("path"):
            try:
                return _mapped(reply["path"], kind)
            except OSError:
                reply, data = self.channel.request({"op": "get_blob", "sha": sha, "copy": True})
        if reply.get("error"):
            raise RuntimeError(reply["error"])
        return data.decode("utf-8", "surrogatepass") if kind == "str" else data

    def forget_unused(self):
        """Drop cached values no snapshot refers to any more, so deleted variables free memory."""
        self.by_id = {k: v for k, v in self.by_id.items() if v[1] in self.used}
        self.used = set()


def _mapped(path, kind):
    with open(path, "rb") as file:
        if os.fstat(file.fileno()).st_size == 0:
            return "" if kind == "str" else b""
        with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as view:
            return str(view, "utf-8", "surrogatepass") if kind == "str" else view[:]


class SnapshotPickler(_BasePickler):
    """Big strings go to the blob store by reference. The helpers are pickled by name: a function
    the model wrote that calls grep or llm_query would otherwise drag the worker and its pipes in."""

    def __init__(self, file, blobs, names_by_id):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.blobs = blobs
        self.names_by_id = names_by_id

    def persistent_id(self, obj):
        kind = type(obj)
        if (kind is str or kind is bytes) and (len(obj) >= BIG_VALUE or self.blobs.holds(obj)):
            return ("str" if kind is str else "bytes", self.blobs.sha_of(obj))
        if id(obj) in self.names_by_id:
            return ("helper", self.names_by_id[id(obj)])
        return None


class SnapshotUnpickler(pickle.Unpickler):
    def __init__(self, file, blobs, named):
        super().__init__(file)
        self.blobs = blobs
        self.named = named

    def persistent_load(self, pid):
        kind, key = pid
        if kind == "helper":
            if key not in self.named:
                raise pickle.UnpicklingError("no REPL helper is called %r" % key)
            return self.named[key]
        return self.blobs.fetch(key, kind)


def model_name(model):
    """The host checks every name against its allow-list; what is not a short string is sent as
    its clipped repr, which no allow-list holds, so the caller gets the host's refusal."""
    if model is None or (isinstance(model, str) and len(model) <= protocol.MAX_NAME):
        return model
    return repr(model)[: protocol.MAX_NAME]


# --- the files the model works on (the from-scratch project's helpers) --------------------


class Matches(list):
    """grep's hits: a plain list that, shown, lists only its first few and says how many it holds."""

    def __repr__(self):
        if len(self) <= GREP_SHOWN:
            return list.__repr__(self)
        head = list.__repr__(self[:GREP_SHOWN])
        return "%d matches; the first %d (slice the list for more):\n%s" % (len(self), GREP_SHOWN, head)


class Files:
    """Named texts with one active, so peek, grep and chunk_indices need no argument."""

    def __init__(self):
        self.texts = {}
        self.sources = {}
        self.active = None

    def add(self, name, text, source=None, replace_all=False):
        if replace_all:
            self.texts, self.sources = {}, {}
        self.texts[name] = text
        self.sources[name] = source
        self.active = name

    def current(self):
        if self.active is None:
            raise LookupError("no file is loaded: use load_file(path) or switch_to(name)")
        return self.texts[self.active]

    def state(self):
        return {"texts": self.texts, "sources": self.sources, "active": self.active}

    def load_state(self, state):
        self.texts, self.sources, self.active = state["texts"], state["sources"], state["active"]


# --- the worker -----------------------------------------------------------------------------


class Worker:
    def __init__(self, channel, reap=None):
        self.channel = channel
        self.reap = reap
        self.blobs = BlobCache(channel)
        self.files = Files()
        self.contexts = {}
        self.final = None
        self.cell_count = 0
        self.warned_cell = 0
        self.at = None
        self.helpers = self._helpers()
        self.named = dict(self.helpers, Matches=Matches)
        """What a snapshot refers to by name, not by value: the helpers and grep's list type."""
        self.names_by_id = {id(value): name for name, value in self.named.items()}
        self.namespace = self._fresh_namespace()

    # .. the names the model sees

    def _helpers(self):
        helpers = {
            "llm_query": self.llm_query,
            "llm_query_batched": self.llm_query_batched,
            "rlm_query": self.rlm_query,
            "rlm_query_batched": self.rlm_query_batched,
            "FINAL": self.FINAL,
            "FINAL_VAR": self.FINAL_VAR,
            "SHOW_VARS": self.SHOW_VARS,
            "peek": self.peek,
            "grep": self.grep,
            "chunk_indices": self.chunk_indices,
            "load_file": self.load_file,
            "load_files": self.load_files,
            "switch_to": self.switch_to,
            "list_files": self.list_files,
            "remove_file": self.remove_file,
            "add_buffer": self.add_buffer,
        }
        for module in (collections, json, math, re):  # imported for the model, which often forgets
            helpers[module.__name__] = module
        for spelling in ("final", "Final"):  # as small models write them; text FINALs count in any case too
            helpers[spelling] = self.FINAL
            helpers[spelling + "_var"] = self.FINAL_VAR
        return helpers

    def _fresh_namespace(self):
        namespace = {"__name__": "__main__", "__builtins__": __builtins__, "buffers": []}
        namespace.update(self.helpers)
        return namespace

    def _ask(self, requests):
        """Sends every request at once and waits for all, so the host can run them concurrently."""
        slots = [self.channel.start_request(request) for request in requests]
        return [self.channel.wait(slot)[0] for slot in slots]

    @staticmethod
    def _answers(replies):
        """A failed request yields an error string in its slot, not a failed batch."""
        return [r["value"] if not r.get("error") else "Error: " + r["error"] for r in replies]

    def _check_prompts(self, prompts):
        """A prompt this short was most likely written as if the sub-model could see the REPL; it
        cannot, and answers anyway (or refuses), so the model is told, once per cell."""
        blind = any(len(p) < BLIND_PROMPT for p in prompts)
        if blind and self.warned_cell != self.cell_count:
            self.warned_cell = self.cell_count
            print(BLIND_PROMPT_NOTE, file=sys.stderr)

    def llm_query(self, prompt, model=None):
        """One sub-model call; raises LLMQueryError when the host could not get an answer."""
        prompt = str(prompt)
        self._check_prompts([prompt])
        (reply,) = self._ask([{"op": "llm_query", "prompt": prompt, "model": model_name(model)}])
        if reply.get("error"):
            raise LLMQueryError(reply["error"])
        return reply["value"]

    def llm_query_batched(self, prompts, model=None):
        """Many sub-model calls in parallel; a failed prompt yields an error string in its slot."""
        prompts = [str(p) for p in prompts]
        self._check_prompts(prompts)
        requests = [{"op": "llm_query", "prompt": p, "model": model_name(model)} for p in prompts]
        return self._answers(self._ask(requests))

    def _context_sha(self, context):
        if context is None:
            return None
        if not isinstance(context, str):
            context = str(context)
        return self.blobs.store(context.encode("utf-8", "surrogatepass"))

    def rlm_query(self, prompt, context=None):
        """A child RLM answers `prompt` about `context` in a sandbox of its own."""
        return self.rlm_query_batched([prompt], [context])[0]

    def rlm_query_batched(self, prompts, contexts=None):
        prompts = list(prompts)
        contexts = list(contexts) if contexts is not None else [None] * len(prompts)
        if len(contexts) != len(prompts):
            raise ValueError("rlm_query_batched needs one context per prompt")
        requests = [
            {"op": "rlm_query", "prompt": str(p), "context_sha": self._context_sha(c)}
            for p, c in zip(prompts, contexts)
        ]
        return self._answers(self._ask(requests))

    def FINAL(self, *values):
        """Delivers the answer straight from the REPL; the first FINAL of a reply wins. Several
        values are joined as print() would, since models call it like print."""
        if not values:
            raise TypeError("FINAL needs the answer: FINAL(value)")
        if self.final is None:
            self.final = " ".join(v if isinstance(v, str) else str(v) for v in values)
        return None

    def FINAL_VAR(self, name):
        """FINAL with the value of a variable, named by a string (or given directly)."""
        if isinstance(name, str) and name.strip().isidentifier():
            if name.strip() not in self.namespace:
                known = ", ".join(row["name"] for row in self.variables()) or "none yet"
                raise NameError(
                    "FINAL_VAR: no variable named %r (yours: %s); FINAL(value) takes the value itself"
                    % (name, known)
                )
            return self.FINAL(self.namespace[name.strip()])
        return self.FINAL(name)

    def SHOW_VARS(self):
        """Prints the REPL's variables with their types and sizes."""
        rows = self.variables()
        if not rows:
            print("(no variables yet)")
        for row in rows:
            size = "" if row["size"] is None else "  len=%d" % row["size"]
            print("%s: %s%s" % (row["name"], row["type"], size))

    def peek(self, start=0, end=2000):
        """The active file's characters from start to end. An end before the start is read as a
        length, since models write peek(offset, 100) meaning 100 characters."""
        if 0 <= end < start:
            end = start + end
        return self.files.current()[start:end]

    def grep(self, pattern, *where, max_matches=None, window=120, text=None):
        """Regex matches in the active file (or `text`), each with `window` characters either
        side. All of them by default, so len(grep(...)) and loops over it count right (the
        from-scratch project returned 20, and models counted those); the list shows only its
        first few. Models write grep(pattern, context): a string among the positional arguments
        is the text; numbers are max_matches, then window."""
        texts = [value for value in where if isinstance(value, str)]
        numbers = [value for value in where if not isinstance(value, str)]
        if len(texts) > 1 or len(numbers) > 2:
            raise TypeError("grep(pattern, max_matches=None, window=120, text=None)")
        if numbers:
            max_matches = numbers[0]
        if len(numbers) == 2:
            window = numbers[1]
        if texts:
            text = texts[0]
        text = self.files.current() if text is None else str(text)
        limit = GREP_RETURN_LIMIT if max_matches is None else max_matches
        matches = re.finditer(pattern, text, re.MULTILINE)
        hits = Matches()
        for match in itertools.islice(matches, max(limit, 0)):
            lo, hi = max(0, match.start() - window), min(len(text), match.end() + window)
            hits.append({"start": match.start(), "match": match.group(0), "text": text[lo:hi]})
        more = sum(1 for _ in itertools.islice(matches, GREP_COUNT_LIMIT))
        if more:
            total = ("over %d" if more == GREP_COUNT_LIMIT else "%d") % (len(hits) + more)
            first = "max_matches" if max_matches is not None else "%d (set max_matches)" % limit
            print("grep: %s matches in all; it returns only the first %s" % (total, first))
        return hits

    def chunk_indices(self, size=100_000, overlap=0):
        """(start, end) pairs covering the active file in chunks of `size` characters."""
        if size <= 0 or overlap < 0 or overlap >= size:
            raise ValueError("chunk_indices needs size > 0 and 0 <= overlap < size")
        length = len(self.files.current())
        step = size - overlap
        return [(start, min(start + size, length)) for start in range(0, max(length, 1), step)]

    def load_file(self, path, name=None, replace_all=False):
        """Loads a file the user allowed (a context or a file under an allowed folder)."""
        name = name or os.path.basename(str(path))
        for label, source in self.files.sources.items():
            if source == str(path) and label in self.files.texts:
                self.files.add(name, self.files.texts[label], source, replace_all)
                return "loaded %s (%d characters), now active" % (name, len(self.files.texts[name]))
        reply, _ = self.channel.request({"op": "read_file", "path": str(path)})
        if reply.get("error"):
            raise PermissionError(reply["error"])
        text = self.blobs.fetch(reply["value"]["sha"], "str")
        self.files.add(name, text, str(path), replace_all)
        return "loaded %s (%d characters), now active" % (name, len(text))

    def load_files(self, paths):
        return [self.load_file(path) for path in paths]

    def switch_to(self, name):
        if name not in self.files.texts:
            raise KeyError("no file named %r; loaded: %s" % (name, sorted(self.files.texts)))
        self.files.active = name
        return "switched to %s" % name

    def list_files(self):
        return [
            {"name": n, "characters": len(t), "active": n == self.files.active}
            for n, t in self.files.texts.items()
        ]

    def remove_file(self, name):
        if name not in self.files.texts:
            raise KeyError("no file named %r" % name)
        del self.files.texts[name]
        self.files.sources.pop(name, None)
        if self.files.active == name:
            self.files.active = next(iter(self.files.texts), None)
        return "removed %s" % name

    def add_buffer(self, text):
        """Keeps a note for later (the from-scratch project's scratch buffer)."""
        self.namespace.setdefault("buffers", []).append(text)

    # .. contexts

    def load_contexts(self, contexts):
        for ctx in contexts:
            if self.contexts.get(ctx["name"]) == ctx["sha"]:
                continue
            text = self.blobs.fetch(ctx["sha"], "str")
            self.namespace[ctx["name"]] = text
            if ctx["name"] == "context_0":
                self.namespace["context"] = text
            self.files.add(ctx.get("label") or ctx["name"], text, ctx.get("source"))
            self.contexts[ctx["name"]] = ctx["sha"]
        if contexts:
            first = contexts[0]
            self.files.active = first.get("label") or first["name"]

    # .. cells

    def run_cell(self, code, timeout):
        self.cell_count += 1
        self.final = None
        filename = "<cell %d>" % self.cell_count
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        error = None
        signal.signal(signal.SIGALRM, _raise_timeout)
        try:
            statements = ast.parse(code, filename).body
            signal.setitimer(signal.ITIMER_REAL, timeout, 1.0)
            for statement in statements:
                self._run_statement(statement, filename)
        except CellTimeout:
            error = (
                "TimeoutError: the cell ran longer than %ss and was stopped; "
                "variables it had already set are kept" % timeout
            )
        except BaseException as exc:
            error = _format_error(exc)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        if os.getpid() != MAIN_PID:
            os._exit(0)
        if self.reap is not None:
            self.reap()
        return error

    def _run_statement(self, statement, filename):
        """A bare expression shows its value wherever it stands in the cell, as in Python's own
        shell: models write `grep(...)` or `len(lines)` mid-cell and expect to see it. A string
        on its own line is a comment and stays quiet."""
        if not isinstance(statement, ast.Expr):
            exec(compile(ast.Module([statement], []), filename, "exec"), self.namespace)
            return
        value = eval(compile(ast.Expression(statement.value), filename, "eval"), self.namespace)
        quiet = isinstance(statement.value, ast.Constant) and isinstance(statement.value.value, str)
        if value is not None and not quiet:
            print(repr(value))

    def variables(self):
        rows = []
        for name, value in self.user_names().items():
            if isinstance(value, types.ModuleType):
                continue
            size = len(value) if type(value) in SIZED_TYPES else None
            rows.append({"name": name, "type": type(value).__name__[:200], "size": size})
        return rows

    def user_names(self):
        return {
            k: v
            for k, v in self.namespace.items()
            if not (k.startswith("__") and k.endswith("__")) and self.helpers.get(k) is not v
        }

    # .. snapshots

    def _dumps(self, state):
        buffer = io.BytesIO()
        SnapshotPickler(buffer, self.blobs, self.names_by_id).dump(state)
        return buffer.getvalue()

    def snapshot(self):
        """Each variable is pickled on its own and stored by content, so a step stores only the
        variables it changed (objects shared between two variables are stored twice)."""
        names = self.user_names()
        modules = {k: v.__name__ for k, v in names.items() if isinstance(v, types.ModuleType)}
        values, lost = {}, {}
        for key, value in names.items():
            if key in modules:
                continue
            try:
                values[key] = self.blobs.store(self._dumps(value))
            except Exception as exc:
                lost[key] = "%s: %s" % (type(exc).__name__, str(exc)[:200])
        meta = self.blobs.store(self._dumps({"files": self.files.state(), "contexts": self.contexts}))
        blobs = sorted(self.blobs.used | set(values.values()) | {meta})
        self.blobs.forget_unused()
        manifest = {
            "format": 2,
            "pickler": PICKLER_NAME,
            "python": "%d.%d" % sys.version_info[:2],
            "values": values,
            "meta": meta,
            "blobs": blobs,
            "modules": modules,
            "lost": lost,
        }
        self.at = protocol.manifest_id(manifest)
        return dict(manifest, variables=self.variables())

    def _loads(self, sha):
        return SnapshotUnpickler(io.BytesIO(self.blobs.read(sha, "bytes")), self.blobs, self.named).load()

    def restore(self, manifest, skip, seconds):
        """Loads every value it can in `seconds` in all, each within its share of the time left
        (protocol.value_seconds); one that fails or overruns is dropped and the host told at once,
        so a value whose loading hangs costs its share, never the thread. With values dropped, the
        namespace is the snapshot without them, whose manifest goes back to the host to keep: a
        value dropped once is never tried again."""
        self.at = protocol.manifest_id(manifest)
        deadline = time.monotonic() + seconds
        dropped = set(skip)
        self.namespace = self._fresh_namespace()
        signal.signal(signal.SIGALRM, _raise_timeout)

        def load(name, loader, into):
            if name in dropped:
                return
            reason = self._load_within(loader, deadline, seconds, name, into)
            if reason is not None:
                dropped.add(name)
                self.channel.send({"op": "dropped", "name": name, "reason": reason[:500]})

        for name, sha in manifest["values"].items():
            load(name, lambda sha=sha: self._loads(sha), self.namespace)
        loaded = {}
        load(META_NAME, lambda: self._loads(manifest["meta"]), loaded)
        meta = loaded.get(META_NAME, {"files": Files().state(), "contexts": {}})
        self.files.load_state(meta["files"])
        self.contexts = dict(meta["contexts"])
        if "context_0" in self.namespace and "context" not in self.namespace:
            self.namespace["context"] = self.namespace["context_0"]
        for name, module in manifest.get("modules", {}).items():
            load(name, lambda module=module: __import__(module, fromlist=["_"]), self.namespace)
        if not dropped:
            return {}
        kept = dict(
            manifest,
            values={k: v for k, v in manifest["values"].items() if k not in dropped},
            modules={k: v for k, v in manifest.get("modules", {}).items() if k not in dropped},
        )
        if META_NAME in dropped:
            kept["meta"] = self.blobs.store(self._dumps(meta))
        self.at = protocol.manifest_id(kept)
        return {"manifest": dict(kept, variables=self.variables())}

    def _load_within(self, loader, deadline, seconds, name, into):
        """Sets `into[name]` to what `loader` returns in time, or says why it could not."""
        limit = protocol.value_seconds(deadline - time.monotonic())
        if limit <= 0:
            return "not loaded: the restore had used up its %gs" % seconds
        self.channel.send({"op": "restoring", "name": name})
        try:
            signal.setitimer(signal.ITIMER_REAL, limit)
            try:
                into[name] = loader()
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except CellTimeout:
            return protocol.overran(limit)
        except Exception as exc:
            return "%s: %s" % (type(exc).__name__, exc)
        return None

    # .. the main loop

    def serve(self, outputs):
        self.channel.send(
            {"op": "ready", "pid": os.getpid(), "pickler": PICKLER_NAME, "python": sys.version.split()[0]}
        )
        while True:
            command = self.channel.commands.get()
            op = command["op"]
            if op == "shutdown":
                return
            try:
                reply = self.handle(op, command, outputs)
            except BaseException as exc:
                if os.getpid() != MAIN_PID:
                    os._exit(0)
                reply = {"error": _format_error(exc)}
            self.channel.send(dict(reply, op="done", id=command["id"]))

    def handle(self, op, command, outputs):
        if op == "exec":
            self.load_contexts(command.get("contexts", []))
            self.namespace["history"] = [dict(turn) for turn in command.get("history", [])]
            outputs.reset(command.get("output_limit", 20_000))
            error = self.run_cell(command["code"], command.get("timeout", 120))
            stdout, stderr = outputs.read(command.get("output_limit", 20_000))
            final = self.final
            return {"stdout": stdout, "stderr": stderr, "error": error, "final": final}
        if op == "snapshot":
            return {"manifest": self.snapshot()}
        if op == "restore":
            return self.restore(command["manifest"], command.get("skip", ()), command["seconds"])
        raise ValueError("unknown command %r" % op)


# --- process plumbing -----------------------------------------------------------------------


def _raise_timeout(signum, frame):
    raise CellTimeout()


def _format_error(exc):
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == WORKER_FILE:
        tb = tb.tb_next
    lines = traceback.format_exception(type(exc), exc, tb)
    return "".join(line for line in lines if WORKER_FILE not in line).rstrip()


def _reap_strays():
    """Ends every process a cell left behind; only where the sandbox has its own PID space."""
    _kill_until_gone(lambda: [p for p in _processes() if p not in (1, os.getpid())])


def _reap_descendants():
    """Ends the processes a cell started, and theirs (orphans come back here: a subreaper)."""

    def descendants():
        parents = _processes()
        found, frontier = set(), {os.getpid()}
        while frontier:
            frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
            found |= frontier
        return sorted(found)

    _kill_until_gone(descendants)


def _processes():
    """pid -> parent pid, from /proc."""
    parents = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/%s/stat" % name) as stat:
                    parents[int(name)] = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    return parents


def _kill_until_gone(find):
    for _ in range(100):
        victims = find()
        if not victims:
            return
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            pass
        time.sleep(0.01)


def clip(text, limit):
    """Keeps the head and tail of long output and says how much was left out."""
    if len(text) <= limit:
        return text
    head, tail = limit // 2, limit - limit // 2
    omitted = len(text) - head - tail
    return "%s\n... [%d characters omitted] ...\n%s" % (text[:head], omitted, text[-tail:])


class Outputs:
    """Points fds 1 and 2 at in-memory files, so prints and child processes land there."""

    def __init__(self):
        self.fds = [_memory_file("stdout"), _memory_file("stderr")]
        self.saved = None
        self.keep = OUTPUT_KEEP
        self.resizing = threading.Lock()
        punch = _hole_puncher()
        if punch is not None:
            threading.Thread(target=self._bound_forever, args=(punch,), daemon=True).start()

    def _bound_forever(self, punch):
        """Only a cell's head and tail are ever read, so the middle is freed while it is written:
        printing gigabytes holds a few MiB (between two passes a fast writer can add more)."""
        while True:
            time.sleep(0.02)
            with self.resizing:
                for fd in self.fds:
                    try:
                        end = (os.fstat(fd).st_size - self.keep) // 4096 * 4096
                    except OSError:
                        continue
                    if end > self.keep:
                        punch(fd, PUNCH_HOLE, self.keep, end - self.keep)

    def attach(self):
        self.saved = (os.dup(1), os.dup(2), sys.stdout, sys.stderr)
        for fd, target in zip(self.fds, (1, 2)):
            os.dup2(fd, target)
        sys.stdout = io.TextIOWrapper(
            io.FileIO(1, "w", closefd=False), encoding="utf-8", errors="backslashreplace", write_through=True
        )
        sys.stderr = io.TextIOWrapper(
            io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="backslashreplace", write_through=True
        )

    def detach(self):
        """Gives fds 1 and 2 back (in a kernel, whose own output they carry)."""
        out, err, sys.stdout, sys.stderr = self.saved
        os.dup2(out, 1)
        os.dup2(err, 2)
        os.close(out)
        os.close(err)

    def reset(self, limit=20_000):
        """Empties both files; `keep` covers what a read of `limit` characters can need (two windows
        of up to 4 bytes a character), so the freed middle is never read."""
        with self.resizing:
            self.keep = max(OUTPUT_KEEP, 8 * limit)
            for fd in self.fds:
                os.ftruncate(fd, 0)
                os.lseek(fd, 0, os.SEEK_SET)

    def read(self, limit):
        sys.stdout.flush()
        sys.stderr.flush()
        return tuple(self._read(fd, limit) for fd in self.fds)

    @staticmethod
    def _read(fd, limit):
        size = os.fstat(fd).st_size
        window = limit * 4
        if size <= 2 * window:
            os.lseek(fd, 0, os.SEEK_SET)
            return clip(os.read(fd, size).decode("utf-8", "replace"), limit)
        os.lseek(fd, 0, os.SEEK_SET)
        head = os.read(fd, window).decode("utf-8", "replace")
        os.lseek(fd, size - window, os.SEEK_SET)
        tail = os.read(fd, window).decode("utf-8", "replace")
        text = clip(head + tail, limit)
        return text.replace("characters omitted", "characters omitted (of %d bytes)" % size, 1)


def _memory_file(name):
    if hasattr(os, "memfd_create"):
        return os.memfd_create("rlm-" + name)
    import tempfile

    return os.dup(tempfile.TemporaryFile().fileno())


def _hole_puncher():
    """fallocate(2), which frees a file's pages in place (memfd and tmpfs support it); None elsewhere."""
    try:
        import ctypes

        fallocate = ctypes.CDLL(None, use_errno=True).fallocate
    except (OSError, AttributeError):
        return None
    fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    return fallocate


def _set_limits(args):
    _limit(resource.RLIMIT_CORE, 0)
    if args.memory_mb:
        _limit(resource.RLIMIT_AS, args.memory_mb * 1024 * 1024)
    if args.max_processes:
        _limit(resource.RLIMIT_NPROC, args.max_processes)


def _limit(kind, value):
    """Soft and hard limit at once; a limit already lower (a kernel reused) stays as it is."""
    hard = resource.getrlimit(kind)[1]
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(kind, (value, value))


def _become_subreaper():
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1)  # PR_SET_CHILD_SUBREAPER
    except Exception:
        pass


def _die_with_parent():
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


TAG = "\x1eRLM\x1e"


class KernelChannel:
    """The channel inside a notebook kernel (E2B): frames go out as tagged lines on the cell's
    output; answers come back as files the host writes, so the sandbox needs no open port."""

    def __init__(self, workdir, fd):
        self.workdir = workdir
        self.fd = fd
        self.lock = threading.Lock()
        self.counter = 0
        for folder in ("out", "replies"):
            os.makedirs(os.path.join(workdir, folder), exist_ok=True)

    def send(self, message, data=None):
        if data is not None:
            path = os.path.join(self.workdir, "out", "%d-%d" % (os.getpid(), self._next()))
            with open(path, "wb") as out:
                out.write(data)
            message = dict(message, file=path)
        line = (TAG + json.dumps(message, separators=(",", ":")) + "\n").encode()
        with self.lock:
            while line:
                line = line[os.write(self.fd, line) :]

    def _next(self):
        with self.lock:
            self.counter += 1
            return self.counter

    def start_request(self, message, data=None):
        request_id = "k%d" % self._next()
        self.send(dict(message, id=request_id), data)
        return request_id

    def wait(self, request_id):
        path = os.path.join(self.workdir, "replies", request_id + ".json")
        delay = 0.002
        while True:
            try:
                with open(path) as answer:
                    reply = json.load(answer)
                break
            except (OSError, ValueError):
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
        os.remove(path)
        data = None
        if "file" in reply:
            with open(reply["file"], "rb") as blob:
                data = blob.read()
            os.remove(reply["file"])
        return reply, data

    def request(self, message, data=None):
        return self.wait(self.start_request(message, data))

    def clean(self):
        """Files sent earlier were read by the host before it ran this command."""
        folder = os.path.join(self.workdir, "out")
        for name in os.listdir(folder):
            os.remove(os.path.join(folder, name))


class KernelSession:
    """The worker inside a notebook kernel: each command arrives as one executed cell."""

    def __init__(self, workdir, memory_mb=0, big_value=BIG_VALUE, max_processes=0):
        global BIG_VALUE
        BIG_VALUE = big_value
        self.workdir = workdir
        _set_limits(argparse.Namespace(memory_mb=memory_mb, max_processes=max_processes))
        _become_subreaper()
        self.channel = KernelChannel(workdir, os.dup(1))
        self.outputs = Outputs()
        self.worker = Worker(self.channel, reap=_reap_descendants)

    def announce(self):
        """Says it is ready, and which snapshot its namespace holds (after a reconnect, maybe one).
        A new host knows only the blobs of that snapshot, so those alone count as uploaded."""
        self.worker.blobs.host_has = {sha for _, sha in self.worker.blobs.by_id.values()}
        self.channel.send({"op": "ready", "pid": os.getpid(), "pickler": PICKLER_NAME, "at": self.worker.at})

    def handle_json(self, text):
        command = json.loads(text)
        self.channel.clean()
        self.outputs.attach()
        try:
            reply = self.worker.handle(command["op"], command, self.outputs)
        except BaseException as exc:
            reply = {"error": _format_error(exc)}
        finally:
            self.outputs.detach()
        self.channel.send(dict(reply, op="done", id=command["id"]))


def main(argv=None):
    global BIG_VALUE
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--memory-mb", type=int, default=0)
    parser.add_argument("--max-processes", type=int, default=0)
    parser.add_argument("--isolated", action="store_true", help="the sandbox has its own PID space")
    parser.add_argument("--big-value", type=int, default=BIG_VALUE)
    parser.add_argument("--drop-to", type=int, default=None, help="uid (and gid) to run as")
    parser.add_argument("--blob-pipe", default=None, help="a FIFO the host sends blobs on")
    args = parser.parse_args(argv)
    BIG_VALUE = args.big_value
    _die_with_parent()
    if args.drop_to is not None:
        os.setgroups([])
        os.setgid(args.drop_to)
        os.setuid(args.drop_to)
    proto_in, proto_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    sys.stdin = open(os.devnull)
    outputs = Outputs()
    outputs.attach()
    channel = Channel(proto_in, proto_out, args.blob_pipe)
    _set_limits(args)
    reader = threading.Thread(target=channel.read_forever, daemon=True)
    reader.start()
    Worker(channel, reap=_reap_strays if args.isolated else None).serve(outputs)


if __name__ == "__main__":
    main()
