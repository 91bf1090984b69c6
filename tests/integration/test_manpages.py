"""The man pages: they render without a warning, document every
configuration key of the code and every option the programs print in
--help (walship: in the --help of each of its commands), and carry the
version of the VERSION file.

The pages in man/ carry @VERSION@ in their .TH line; the Makefile builds them
into $(BUILD)/man/ with sed.  This test builds them the same way into a
temporary directory, and when $(BUILD)/man/ exists (WALSHIP_RELEASE_BIN is
$(BUILD)/bin) checks that what make built is the same.  The configuration
keys come from the table in src/util/config.c (no command lists them).
"""

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
MAN_SRC = REPO_ROOT / "man"
BIN = Path(os.environ.get("WALSHIP_BIN") or REPO_ROOT / "build" / "testing" / "bin")
# The release programs: their $(BUILD) holds the man pages make built.
RELEASE_BIN = Path(os.environ.get("WALSHIP_RELEASE_BIN") or REPO_ROOT / "build" / "bin")
VERSION = (REPO_ROOT / "VERSION").read_text().strip()

# page -> the program whose --help it documents (None: no program)
PAGES = {
    "walship.1": "walship",
    "walship-push.1": "walship-push",
    "walship-fetch.1": "walship-fetch",
    "walship.conf.5": None,
}

# A fixed locale and width, so that man never complains about the locale and
# renders the same everywhere.
ENV = dict(os.environ, LANG="C.UTF-8", LC_ALL="C.UTF-8", MANWIDTH="80",
           MANPAGER="cat", PAGER="cat")


def run(cmd, **kw):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True,
                          env=ENV, timeout=60, **kw)


@pytest.fixture(scope="module")
def built():
    """The pages as `make` builds them: sed 's/@VERSION@/$(VERSION)/g'."""
    missing = [p for p in PAGES if not (MAN_SRC / p).is_file()]
    assert not missing, f"man pages missing from {MAN_SRC}: {missing}"
    out = Path(tempfile.mkdtemp(prefix="walship-man-"))
    try:
        for page in PAGES:
            with open(out / page, "w") as f:
                subprocess.run(["sed", f"s/@VERSION@/{VERSION}/g", str(MAN_SRC / page)],
                               stdout=f, check=True)
        yield out
    finally:
        shutil.rmtree(out)


# ---------------------------------------------------------------------------
# reading roff source


def plain(line):
    """A roff line as text: macro name, font escapes, quotes and special
    characters taken out, so that `.BI \\-\\-repo= URL` reads `--repo= URL`."""
    s = re.sub(r"^\.[A-Za-z]+\s*", "", line)
    s = re.sub(r"\\f(\[[^]]*\]|\(..|.)", "", s)
    s = s.replace("\\-", "-").replace("\\&", "").replace("\\c", "").replace("\\e", "\\")
    s = s.replace("\\(aq", "'").replace("\\(dq", '"').replace("\\(lq", '"').replace("\\(rq", '"')
    s = s.replace("\\ ", " ")
    return s.replace('"', "")


def sections(text):
    """{".SH name": [lines]} of a page's source."""
    out, cur = {}, None
    for line in text.splitlines():
        m = re.match(r"^\.SH\s+(.*)$", line)
        if m:
            cur = m.group(1).strip().strip('"')
            out[cur] = []
        elif cur is not None:
            out[cur].append(line)
    return out


def items(lines):
    """The top-level .TP items of some source lines: [(tag as text, body as
    text)].  A body runs to the next .TP, .SS or .SH at its own level and takes
    in any .RS/.RE block (with its nested items) on the way."""
    out = []
    i = 0
    while i < len(lines):
        if lines[i].startswith(".TP"):
            tag = plain(lines[i + 1]).strip()
            body = []
            depth = 0
            i += 2
            while i < len(lines):
                if lines[i].startswith(".RS"):
                    depth += 1
                elif lines[i].startswith(".RE"):
                    if depth == 0:
                        break
                    depth -= 1
                elif depth == 0 and re.match(r"^\.(TP|SS|SH)\b", lines[i]):
                    break
                body.append(plain(lines[i]))
                i += 1
            out.append((tag, " ".join(body)))
        else:
            i += 1
    return out


def config_keys():
    """The table of keys in src/util/config.c:
    [(name, default or None, secret, AWS variable or None)]."""
    src = (REPO_ROOT / "src" / "util" / "config.c").read_text()
    m = re.search(r"static const ConfigKey keys\[\] = \{(.*?)\n\};", src, re.S)
    assert m, "the keys[] table was not found in src/util/config.c"
    entries = re.findall(
        r'\{\s*"([a-z0-9-]+)",\s*(NULL|"[^"]*"),\s*(true|false),\s*(NULL|"[A-Z_]+")',
        m.group(1))
    keys = [(n, None if d == "NULL" else d.strip('"'), s == "true",
             None if a == "NULL" else a.strip('"')) for n, d, s, a in entries]
    # The table ends with {NULL, ...}: count the entries to be sure none was missed.
    assert len(keys) == m.group(1).count('\t{"'), "could not read every entry of keys[]"
    assert len(keys) >= 20, keys
    return keys


def help_commands(text):
    """The commands of walship --help's Commands: list."""
    m = re.search(r"^Commands:\n((?:  \S.*\n)+)", text, re.M)
    return [line.split()[0] for line in m.group(1).splitlines()] if m else []


def help_options(program):
    """The options a program's --help shows; for walship, with those of every
    command's own --help (walship COMMAND --help)."""
    out = run([BIN / program, "--help"])
    assert out.returncode == 0, out.stderr
    text = out.stdout
    for command in help_commands(out.stdout):
        sub = run([BIN / program, command, "--help"])
        assert sub.returncode == 0, sub.stderr
        text += sub.stdout
    long_opts = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", text))
    short_opts = set(re.findall(r"(?<![\w-])-[A-Za-z](?![\w-])", text))
    assert "--help" in long_opts and "--repo" in long_opts, text
    return long_opts, short_opts


# ---------------------------------------------------------------------------
# tests


@pytest.mark.parametrize("page", sorted(PAGES))
def test_page_renders_without_warnings(built, page):
    path = built / page
    # man-db as a user runs it, with its warnings on.
    r = run(["man", "--warnings", "-E", "UTF-8", "-l", path])
    assert r.returncode == 0, r.stderr
    assert r.stderr == "", f"man warns about {page}:\n{r.stderr}"
    assert "NAME" in r.stdout and "SEE ALSO" in r.stdout
    # Every warning groff knows.
    r = run(["groff", "-man", "-ww", "-z", path])
    assert r.returncode == 0 and r.stderr == "", f"groff warns about {page}:\n{r.stderr}"
    # The NAME line is what whatis/apropos (and lintian) read.
    name = page.rsplit(".", 1)[0]
    r = run(["lexgrog", path])
    assert r.returncode == 0, r.stdout + r.stderr
    assert f'"{name} - ' in r.stdout, r.stdout


@pytest.mark.parametrize("page", sorted(PAGES))
def test_page_is_named_after_its_file(page):
    th = next(line for line in (MAN_SRC / page).read_text().splitlines() if line.startswith(".TH"))
    fields = re.findall(r'"[^"]*"|\S+', th)[1:]
    name, section = page.rsplit(".", 1)
    assert fields[0] == name.upper() and fields[1] == section, th


@pytest.mark.parametrize("page", sorted(PAGES))
def test_version_comes_from_version_file(built, page):
    src_th = next(line for line in (MAN_SRC / page).read_text().splitlines() if line.startswith(".TH"))
    # The source carries the placeholder (or, at least, the current version): never a stale one.
    assert "@VERSION@" in src_th or f"walship {VERSION}\"" in src_th, src_th
    built_text = (built / page).read_text()
    assert "@VERSION@" not in built_text
    assert f'"walship {VERSION}"' in built_text.splitlines()[
        next(i for i, line in enumerate(built_text.splitlines()) if line.startswith(".TH"))]
    rendered = run(["man", "-E", "UTF-8", "-l", built / page]).stdout
    assert f"walship {VERSION}" in rendered.splitlines()[-1], rendered.splitlines()[-1]
    # The programs print the same version.
    if PAGES[page]:
        r = run([BIN / PAGES[page], "--version"])
        assert r.returncode == 0 and r.stdout.split()[-1] == VERSION, r.stdout
    # What `make` built into $(BUILD)/man, when it did, is the same.
    made = RELEASE_BIN.parent / "man" / page
    if made.exists() and made.resolve() != (MAN_SRC / page).resolve():
        assert made.read_text() == built_text, f"{made} is stale: run make"


def test_every_configuration_key_is_documented():
    text = (MAN_SRC / "walship.conf.5").read_text()
    settings = sections(text).get("SETTINGS")
    assert settings, "walship.conf.5 has no SETTINGS section"
    documented = {}
    for tag, body in items(settings):
        word = tag.split()[0] if tag else ""
        if re.fullmatch(r"[a-z][a-z0-9-]*", word):
            documented[word] = body
    keys = config_keys()
    names = {k[0] for k in keys}

    missing = sorted(names - documented.keys())
    assert not missing, f"keys of src/util/config.c without an item in walship.conf.5: {missing}"
    unknown = sorted(documented.keys() - names)
    assert not unknown, f"walship.conf.5 documents keys the code does not have: {unknown}"

    for name, default, secret, aws in keys:
        body = documented[name]
        env = "WALSHIP_" + name.upper().replace("-", "_")
        assert env in body, f"{name}: its environment variable {env} is not named"
        if aws:
            assert aws in body, f"{name}: {aws} is not named"
        if default is not None:
            d = re.escape(default)
            assert re.search(rf"Default:?\s+{d}(?![\w/-])|(?<![\w/-]){d}\s+\(default\)", body), \
                f"{name}: the default {default!r} of the code is not stated"
        else:
            assert re.search(r"default", body, re.I), f"{name}: nothing says what happens when unset"
        assert (re.search(r"\bSecret\b", body) is not None) == secret, \
            f"{name}: secret is {secret} in the code, the page says otherwise"

    # The list of secret keys in PERMISSIONS AND SECRETS is the code's.
    perm = " ".join(plain(line) for line in sections(text)["PERMISSIONS AND SECRETS"])
    m = re.search(r"The secret keys are (.*?)\.", perm)
    assert m, "PERMISSIONS AND SECRETS does not list the secret keys"
    listed = set(re.findall(r"[a-z][a-z0-9-]+", m.group(1))) - {"and"}
    assert listed == {k[0] for k in keys if k[2]}, m.group(1)


@pytest.mark.parametrize("page", [p for p, prog in sorted(PAGES.items()) if prog])
def test_every_option_of_help_is_documented(page):
    long_opts, short_opts = help_options(PAGES[page])
    text = (MAN_SRC / page).read_text().splitlines()
    tags = " ".join(tag for tag, _ in items(text))
    tag_long = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", tags))
    tag_short = set(re.findall(r"(?<![\w-])-[A-Za-z](?![\w-])", tags))

    missing = sorted(long_opts - tag_long) + sorted(short_opts - tag_short)
    assert not missing, f"{page}: options of {PAGES[page]} --help without an item: {missing}"
    # And nothing invented: every option the page describes is one the program has.
    extra = sorted(tag_long - long_opts) + sorted(tag_short - short_opts)
    assert not extra, f"{page}: items for options {PAGES[page]} --help does not show: {extra}"


def test_walship_page_documents_every_command_and_its_exit_codes():
    text = (MAN_SRC / "walship.1").read_text()
    cmds = sections(text)["COMMANDS"]
    subsections = {}
    cur = None
    for line in cmds:
        m = re.match(r"^\.SS\s+walship\s+(\w+)", line)
        if m:
            cur = m.group(1)
            subsections[cur] = []
        elif cur:
            subsections[cur].append(plain(line))
    for command in ("init", "backup", "list", "rebuild", "upgrade", "prune", "verify", "check"):
        assert command in subsections, f"walship.1 has no subsection for walship {command}"
        body = " ".join(subsections[command])
        assert "Exit status: 0" in body, f"walship {command}: no exit status"
        assert "2 usage error" in body, f"walship {command}: exit 2 not documented"
    # verify and check: 3 for what they found, as src/cmd/verify.h and check.h define it.
    for command, header, macro in (("verify", "verify.h", "VERIFY_EXIT_PROBLEMS"),
                                   ("check", "check.h", "CHECK_EXIT_FAILED")):
        code = re.search(rf"#define {macro}\s+(\d+)",
                         (REPO_ROOT / "src" / "cmd" / header).read_text()).group(1)
        assert f"; {code} " in " ".join(subsections[command]), f"walship {command}: exit {code}"


def test_fetch_page_exit_codes_are_the_programs():
    """The codes of walship-fetch's EXIT STATUS are those the code can return."""
    text = (MAN_SRC / "walship-fetch.1").read_text()
    codes = {tag for tag, _ in items(sections(text)["EXIT STATUS"])}
    abort = re.search(r"#define FETCH_EXIT_ABORT\s+(\d+)",
                      (REPO_ROOT / "src" / "cmd" / "fetch.h").read_text()).group(1)
    assert codes == {"0", "1", abort}, codes
    # A usage error is answered with the abort code, as PostgreSQL must see it.
    r = run([BIN / "walship-fetch", "--no-such-option", "000000010000000000000001", "pg_wal/RECOVERYXLOG"])
    assert r.returncode == int(abort), (r.returncode, r.stderr)
    push = {tag for tag, _ in items(sections((MAN_SRC / "walship-push.1").read_text())["EXIT STATUS"])}
    assert push == {"0", "1"}, push
