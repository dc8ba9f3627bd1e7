"""The inputs people have, given to `rlm` the way they give them: text piped in, a folder, a
compressed file, a PDF, a file in another encoding, an empty file. The scripted model runs the
question as the REPL program, so each answer is what the REPL computed from the context it got."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import subprocess
import zlib

import pytest

from tests.conftest import need_bwrap, need_docker
from tests.openai_server import ScriptedOpenAIServer, is_root_call, last_question, root_step

FRENCH = "Le café de la gare ouvre à sept heures. Les élèves arrivent déjà fatigués.\n"
LIMITS = ["--max-iterations", "2"]


def program(messages):
    """The question is the REPL program; a program that fails is not retried."""
    if not is_root_call(messages):
        return "summary"
    if root_step(messages) == 0:
        return f"```repl\n{last_question(messages)}\n```"
    return "```repl\nFINAL('the program failed')\n```"


@pytest.fixture
def newcomer(user):
    need_bwrap()
    with ScriptedOpenAIServer(program) as server:
        user.use_model(server.url)
        yield user


def ask(user, code: str, *args: str, input: bytes | str | None = None) -> subprocess.CompletedProcess:
    return user.run(["run", code, *args, *LIMITS], input=input)


def test_text_piped_in_is_the_context_and_no_pipe_means_no_context(newcomer):
    piped = newcomer.shell(f"printf 'piped words\\n' | rlm run 'FINAL(context.strip())' {' '.join(LIMITS)}")
    assert (piped.returncode, piped.stdout.strip()) == (0, "piped words"), piped.stderr
    assert "reading stdin" in piped.stderr

    alone = ask(newcomer, "FINAL(str('context' in globals()))", "--thread", "alone")
    assert (alone.returncode, alone.stdout.strip()) == (0, "False"), alone.stderr
    status, shown, _ = newcomer.run_on_terminal(
        ["run", "FINAL(str('context' in globals()))", "--thread", "tty", *LIMITS], streams=("stdin",)
    )
    assert status == 0 and "reading stdin" not in shown.decode(errors="replace")


@pytest.mark.parametrize("name", ["-", "/dev/stdin"])
def test_context_named_stdin_reads_the_pipe_not_its_path(newcomer, name):
    done = ask(
        newcomer, "FINAL(context.strip())", "-c", name, "-c", "examples/sample.log", input="from the pipe\n"
    )
    assert (done.returncode, done.stdout.strip()) == (0, "from the pipe"), done.stderr


def test_folder_gives_its_text_files_by_relative_path(newcomer):
    src = newcomer.cwd / "src"
    (src / "pkg").mkdir(parents=True)
    (src / "main.py").write_text("print('main')\n")
    (src / "pkg" / "util.py").write_text("def util(): pass\n")
    (src / ".env").write_text("SECRET=1\n")
    (src / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64))
    (src / ".gitignore").write_text("*.log\n")
    (src / "pkg" / "debug.log").write_text("ignored\n")
    code = "FINAL(', '.join(sorted(f['name'] for f in list_files())) + ' | ' + context_1.strip())"
    done = ask(newcomer, code, "-c", "src/")
    assert (done.returncode, done.stdout.strip()) == (0, "main.py, pkg/util.py | def util(): pass"), (
        done.stderr
    )
    assert "src: 2 text file(s), 31 bytes" in done.stderr


def test_rlm_init_takes_a_folder_and_stdin(newcomer):
    (newcomer.cwd / "notes").mkdir()
    (newcomer.cwd / "notes" / "a.txt").write_text("alpha\n")
    init = newcomer.run(["init", "notes", "-"], input="beta\n")
    assert init.returncode == 0, init.stderr
    done = ask(newcomer, "FINAL(context_0.strip() + context_1.strip())")
    assert (done.returncode, done.stdout.strip()) == (0, "alphabeta"), done.stderr


def test_a_folder_over_the_cap_is_refused_before_anything_is_stored(newcomer):
    (newcomer.cwd / "big").mkdir()
    (newcomer.cwd / "big" / "data.txt").write_text("x" * 2_000_000)
    done = ask(newcomer, "FINAL('x')", "-c", "big", "--max-folder-mb", "1")
    assert done.returncode == 2 and done.stdout == ""
    assert "over the limit of 1 MiB" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not list((newcomer.cwd / ".rlm").glob("blobs/??/*"))


@pytest.mark.parametrize(
    ("suffix", "compress"),
    [(".gz", gzip.compress), (".bz2", bz2.compress), (".xz", lzma.compress), (".zst", None)],
)
def test_compressed_files_are_decompressed(newcomer, suffix, compress):
    if compress is None:
        import zstandard

        compress = zstandard.ZstdCompressor().compress
    (newcomer.cwd / f"notes.txt{suffix}").write_bytes(compress(FRENCH.encode() * 1000))
    done = ask(newcomer, "FINAL(f'{len(context)} {context.splitlines()[0]}')", "-c", f"notes.txt{suffix}")
    assert (done.returncode, done.stdout.strip()) == (0, f"{len(FRENCH) * 1000} {FRENCH.strip()}"), (
        done.stderr
    )


def small_pdf(text: str) -> bytes:
    """A one-page PDF whose page shows `text` (Helvetica), with a correct cross-reference table."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >> >> "
        b"/Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream"
        % (len(zlib.compress(stream)), zlib.compress(stream)),
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def test_pdf_text_is_the_context(newcomer):
    (newcomer.cwd / "report.pdf").write_bytes(small_pdf("Quarterly revenue rose nine percent"))
    done = ask(newcomer, "FINAL(context.strip())", "-c", "report.pdf")
    assert (done.returncode, done.stdout.strip()) == (0, "Quarterly revenue rose nine percent"), done.stderr


def test_a_pdf_without_the_pdf_extra_is_one_line_naming_it(newcomer, tmp_path):
    (newcomer.cwd / "report.pdf").write_bytes(small_pdf("Quarterly revenue"))
    without = tmp_path / "without-pypdf"
    (without / "pypdf").mkdir(parents=True)
    (without / "pypdf" / "__init__.py").write_text(
        "raise ImportError('No module named pypdf', name='pypdf')\n"
    )
    path = os.pathsep.join(filter(None, [str(without), newcomer.env.get("PYTHONPATH")]))
    done = newcomer.run(["run", "FINAL(context)", "-c", "report.pdf"], env={"PYTHONPATH": path})
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "'pdf' extra" in lines[0] and "pip install 'langgraph-rlm[pdf]'" in lines[0]


@pytest.mark.parametrize("sandbox", ["local", "docker"])
def test_latin1_text_is_decoded_with_one_warning(newcomer, sandbox):
    flags = ["--sandbox", sandbox]
    if sandbox == "docker":
        need_docker()
        flags += ["--docker-image", "rlm-test-python3:bookworm"]
    (newcomer.cwd / "menu.txt").write_bytes(FRENCH.encode("latin-1"))
    done = ask(newcomer, "FINAL(context.strip())", "-c", "menu.txt", *flags)
    assert (done.returncode, done.stdout.strip()) == (0, FRENCH.strip()), done.stderr
    warnings = [line for line in done.stderr.splitlines() if "menu.txt" in line]
    assert warnings == ["warning: menu.txt is not UTF-8: read as cp1252"]


def test_utf16_text_is_decoded_and_binary_still_refused(newcomer):
    (newcomer.cwd / "wide.txt").write_bytes(FRENCH.encode("utf-16"))
    done = ask(newcomer, "FINAL(context.strip())", "-c", "wide.txt")
    assert (done.returncode, done.stdout.strip()) == (0, FRENCH.strip()), done.stderr
    assert "wide.txt is not UTF-8: read as utf_16" in done.stderr

    (newcomer.cwd / "blob.bin").write_bytes(bytes(range(256)) * 8)
    refused = ask(newcomer, "FINAL('x')", "-c", "blob.bin")
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.strip().splitlines() == ["error: blob.bin looks binary, not text"]


def test_an_empty_file_is_warned_about(newcomer):
    (newcomer.cwd / "empty.txt").write_text("")
    done = ask(newcomer, "FINAL(len(context))", "-c", "empty.txt")
    assert (done.returncode, done.stdout.strip()) == (0, "0"), done.stderr
    assert "warning: empty.txt is empty" in done.stderr
