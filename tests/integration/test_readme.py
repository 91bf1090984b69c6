"""The README's quick start, run as written, so that the front page cannot rot.

The quick start is for Debian 12 with the `postgresql` package: a cluster 15/main whose data
directory is /var/lib/postgresql/15/main and whose postgresql.conf and pg_hba.conf live in
/etc/postgresql/15/main, and walship installed from its package (/etc/walship/walship.conf,
root:postgres 0640).  This test builds a scratch copy of that machine under a temporary
directory ROOT (ROOT/var/lib/postgresql/15/main, ROOT/etc/postgresql/15/main, ROOT/etc/walship,
ROOT/srv), with a throwaway cluster laid out the same way, and runs the README's marked blocks
in order:

    <!-- readme-test: console -->          a transcript: "$ command" lines (a trailing "\\"
                                           continues one), each followed by what it prints
    <!-- readme-test: postgresql.conf -->  lines appended to the cluster's postgresql.conf
    <!-- readme-test: crontab -->          /etc/cron.d lines: each command runs as its user and
                                           must print nothing (cron mails any output)

Before running, paths the README names are moved under ROOT (PATHS), the copy's port 5433
becomes a free one, and Debian's service command becomes pg_ctl (SERVICE).  `sudo -u postgres
CMD` runs CMD as postgres, any other `sudo` as root; the programs come from $WALSHIP_BIN (first
on PATH), the configuration file from $WALSHIP_CONFIG (ROOT/etc/walship/walship.conf), the
server's port from $PGPORT; sockets are in /var/run/postgresql, as on Debian.  The server's
walship-push gets --config=ROOT/etc/walship/walship.conf, the file it reads by default.  Every command
must exit 0, and its output (stdout and stderr together, line-buffered as on a terminal) must
have the shape the README shows: line for line, where numbers, hex digits, ids and times may
differ (a line that is one number, such as the copy's row count, may not), a "…" inside a line
stands for any text and a line "…" for any number of lines.  A
line the README shows a command printing (the time of `SELECT now()`) is replaced in later
commands by what the command really printed.

WALSHIP_README_TRANSCRIPT=FILE writes the real transcript, with the README's paths, to FILE:
what to paste into the README when the output changes.
"""

import grp
import os
import re
import subprocess
import time
from pathlib import Path

from pgcluster import (
    BASE_ENV,
    INITDB_OPTS,
    PG_BIN,
    PG_USER,
    check_run,
    describe,
    free_port,
    make_pg_dir,
    popen,
    run,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
README = REPO_ROOT / "README.md"

MARK = re.compile(r"^<!-- readme-test: (console|postgresql\.conf|crontab) -->\s*$")
FENCE = re.compile(r"^```(\S*)\s*$")

# Paths of the README and where they are in the scratch machine (relative to ROOT).
PATHS = ("/var/lib/postgresql/", "/etc/postgresql/", "/var/lib/walship", "/etc/walship/", "/srv/")
COPY_PORT = "5433"
# Debian's way to restart the cluster, done here with pg_ctl.
SERVICE = "systemctl restart postgresql@15-main"

SOCKET_DIR = "/var/run/postgresql"


# ---------------------------------------------------------------------------
# reading the README


def blocks(text):
    """[(kind, [lines])] of the marked fenced blocks, in order.  Every ```console block must be
    marked: a transcript nobody runs is one that rots."""
    lines = text.splitlines()
    out = []
    i = 0
    while i < len(lines):
        m = MARK.match(lines[i])
        f = FENCE.match(lines[i])
        if m:
            j = i + 1
            while j < len(lines) and not lines[j].strip():
                j += 1
            assert j < len(lines) and FENCE.match(lines[j]), \
                f"README.md line {i + 1}: {lines[i]} is not followed by a fenced block"
            body = []
            k = j + 1
            while k < len(lines) and lines[k].rstrip() != "```":
                body.append(lines[k])
                k += 1
            assert k < len(lines), f"README.md line {j + 1}: the fenced block is not closed"
            out.append((m.group(1), body))
            i = k + 1
        elif f:
            assert f.group(1) != "console", \
                f"README.md line {i + 1}: a console block without <!-- readme-test: console --> before it"
            k = i + 1
            while k < len(lines) and lines[k].rstrip() != "```":
                k += 1
            i = k + 1
        else:
            i += 1
    return out


def transcript(body):
    """[(command, [shown output lines])] of a console block."""
    steps = []
    i = 0
    while i < len(body):
        line = body[i]
        assert line.startswith("$ "), f"console block: output before any command: {line!r}"
        cmd = line[2:]
        while cmd.endswith("\\"):
            i += 1
            cmd = cmd[:-1] + body[i].strip()
        i += 1
        shown = []
        while i < len(body) and not body[i].startswith("$ "):
            shown.append(body[i])
            i += 1
        steps.append((cmd.strip(), shown))
    return steps


def shape(line):
    """A regular expression for a shown output line: numbers, hex digits and ids may differ,
    blanks may be wider or narrower, "…" stands for any text.  A line that is one number (a
    count, such as the rows the copy holds) must be that number."""
    if re.fullmatch(r"[1-9][0-9]*", line.strip()):
        return re.compile(re.escape(line.strip()))
    out = []
    for tok in re.findall(r"…|\s+|[0-9A-Fa-f]+|.", line.strip()):
        if tok == "…":
            out.append(".*?")
        elif tok.isspace():
            out.append(r"\s+")
        elif re.fullmatch(r"[0-9A-Fa-f]+", tok) and re.search(r"\d", tok):
            out.append("[0-9A-Fa-f]+")
        else:
            out.append(re.escape(tok))
    return re.compile("".join(out))


def matches(shown, real):
    """Whether the real output lines have the shape of the shown ones (a shown line "…" takes
    any number of lines).  Returns the pairs (shown, real) matched, or None."""
    memo = {}

    def go(i, j):
        if (i, j) in memo:
            return memo[(i, j)]
        if i == len(shown):
            res = [] if j == len(real) else None
        elif shown[i].strip() == "…":
            res = None
            for k in range(j, len(real) + 1):
                rest = go(i + 1, k)
                if rest is not None:
                    res = rest
                    break
        elif j < len(real) and shape(shown[i]).fullmatch(real[j].strip()):
            rest = go(i + 1, j + 1)
            res = None if rest is None else [(shown[i], real[j])] + rest
        else:
            res = None
        memo[(i, j)] = res
        return res

    return go(0, 0)


# ---------------------------------------------------------------------------
# the scratch machine


class Machine:
    """A Debian 12 host in miniature under root: cluster 15/main with its configuration in
    etc/postgresql/15/main, walship's configuration file, /srv."""

    def __init__(self, root, bindir, clusters, sanitized=False):
        self.root = Path(root)
        self.bindir = Path(bindir)
        self.data = self.root / "var/lib/postgresql/15/main"
        self.etc = self.root / "etc/postgresql/15/main"
        self.conf = self.etc / "postgresql.conf"
        self.log = self.root / "var/log/postgresql/postgresql-15-main.log"
        self.walship_conf = self.root / "etc/walship/walship.conf"
        self.copy_port = str(free_port())
        self.primary = clusters.new("main")
        self.primary.data, self.primary.log = self.data, self.log
        # The copy the README rebuilds into /srv/pitr: stopped at teardown if the test fails.
        self.copy = clusters.new("pitr")
        self.copy.data = self.root / "srv/pitr"
        self.env = {
            "PATH": f"{self.bindir}:{BASE_ENV['PATH']}",
            "WALSHIP_CONFIG": str(self.walship_conf),
            "PGPORT": str(self.primary.port),
        }
        if sanitized:
            # Each line runs under stdbuf, whose LD_PRELOAD the ASan runtime (make asan) would refuse.
            self.env["ASAN_OPTIONS"] = "verify_asan_link_order=0"

    def build(self):
        for d in ("var/lib/postgresql/15", "etc/postgresql/15/main", "var/log/postgresql", "var/spool/walship"):
            make_pg_dir(self.root / d, 0o700 if d.endswith("walship") else 0o755)
        (self.root / "srv").mkdir(mode=0o755)
        (self.root / "etc/walship").mkdir(mode=0o755)
        # What the package installs: root:postgres 0640.  The spool is this machine's own.
        self.walship_conf.write_text(f"# walship.conf\nspool-path = {self.root}/var/spool/walship\n")
        os.chown(self.walship_conf, 0, grp.getgrnam(PG_USER).gr_gid)
        os.chmod(self.walship_conf, 0o640)

        check_run([PG_BIN / "initdb", "-D", self.data, *INITDB_OPTS], timeout=300)
        for name in ("postgresql.conf", "pg_hba.conf", "pg_ident.conf"):
            os.rename(self.data / name, self.etc / name)
        with open(self.conf, "a") as f:
            f.write(f"\n# as pg_createcluster writes it\n"
                    f"hba_file = '{self.etc}/pg_hba.conf'\n"
                    f"ident_file = '{self.etc}/pg_ident.conf'\n"
                    f"port = {self.primary.port}\n"
                    f"unix_socket_directories = '{SOCKET_DIR}'\n"
                    f"listen_addresses = ''\n"
                    f"shared_buffers = 32MB\n")
        self.start()

    def start(self):
        rc, out, err = run([PG_BIN / "pg_ctl", "-D", self.data, "-o", f"-c config_file={self.conf}",
                            "-l", self.log, "-w", "-t", "120", "start"], env=self.env, timeout=150)
        assert rc == 0, describe(rc, out, err) + "\nserver log:\n" + self.primary.log_tail()
        self.primary.started = True

    def restart(self):
        self.primary.stop()
        self.start()
        return []

    def to_scratch(self, text, hook_config=False):
        """The README's text with the scratch machine's paths and port.  In postgresql.conf
        (hook_config), walship-push also gets --config=: on Debian it reads
        /etc/walship/walship.conf by default, here that file is under ROOT."""
        if hook_config:
            text = re.sub(r"(?<![\w/-])walship-push ", "walship-push --config=/etc/walship/walship.conf ", text)
        for p in PATHS:
            text = re.sub(rf"(?<![\w./-]){re.escape(p)}", lambda _m, p=p: f"{self.root}{p}", text)
        text = text.replace("/usr/lib/postgresql/15/bin", str(PG_BIN))
        return re.sub(rf"\b{COPY_PORT}\b", self.copy_port, text)

    def to_readme(self, text):
        text = text.replace(str(self.root), "").replace(str(PG_BIN), "/usr/lib/postgresql/15/bin")
        return re.sub(rf"\b{self.copy_port}\b", COPY_PORT, text)

    def sh(self, line):
        """Run one README command line as the user it names; (exit code, output lines)."""
        if line.startswith("sudo -u postgres "):
            user, line = PG_USER, line[len("sudo -u postgres "):]
        else:
            user = None
        assert "sudo -u" not in line, f"only a leading sudo -u postgres is understood: {line}"
        line = re.sub(r"(^|[|;&]\s*)sudo\s+", r"\1", line)
        proc = popen(["stdbuf", "-oL", "-eL", "/bin/sh", "-c", line], cwd=self.root, user=user, env=self.env,
                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                     start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            out, _ = proc.communicate()
            raise AssertionError(f"timed out after 300 s: {line}\n{out.decode(errors='replace')}")
        return proc.returncode, out.decode(errors="replace").splitlines()

    def wait_archived(self):
        """Let the archiver catch up, as it does while a person types the next command."""
        status = self.data / "pg_wal/archive_status"
        if not (self.data / "postmaster.pid").exists():
            return
        deadline = time.monotonic() + 60
        while any(status.glob("*.ready")):
            assert time.monotonic() < deadline, \
                "WAL files were not archived within 60 s\nserver log:\n" + self.primary.log_tail()
            time.sleep(0.1)


# ---------------------------------------------------------------------------
# tests


def test_every_console_block_is_marked_and_parses():
    kinds = [kind for kind, _ in blocks(README.read_text())]
    assert kinds.count("console") >= 4 and "postgresql.conf" in kinds and "crontab" in kinds, kinds
    for kind, body in blocks(README.read_text()):
        if kind == "console":
            assert transcript(body), "an empty console block"


def test_shape():
    assert shape('backup "20261207T163645Z" complete: 22.4 MiB, stored 3.1 MiB, 0.9 s').fullmatch(
        'backup "20261208T010203Z" complete: 21.9 MiB, stored 3.0 MiB, 1.2 s')
    assert not shape("kept 1 backup").fullmatch("kept 2 backups")
    assert shape("a … z").fullmatch("a b c z") and not shape("a z").fullmatch("a b z")
    assert shape("1000").fullmatch("1000") and not shape("1000").fullmatch("999")
    assert matches(["x", "…", "z"], ["x", "y", "y", "z"]) and not matches(["x", "z"], ["x", "y", "z"])


def test_quick_start(tmp, ws, clusters, sanitized):
    root = make_pg_dir(tmp / "root", 0o755)
    m = Machine(root, ws.bindir, clusters, sanitized)
    m.build()
    captured = {}  # line the README shows -> line really printed
    recording = os.environ.get("WALSHIP_README_TRANSCRIPT")
    record = []
    try:
        for kind, body in blocks(README.read_text()):
            if kind == "postgresql.conf":
                with open(m.conf, "a") as f:
                    f.write("\n" + m.to_scratch("\n".join(body), hook_config=True) + "\n")
                record.append("(postgresql.conf)\n" + "\n".join(body))
            elif kind == "crontab":
                for line in body:
                    if not line.strip() or line.lstrip().startswith("#"):
                        continue
                    fields = line.split(None, 6)
                    assert len(fields) == 7 and fields[5] in ("root", PG_USER), f"not a /etc/cron.d line: {line}"
                    user, cmd = fields[5], fields[6]
                    rc, out = m.sh(("" if user == "root" else f"sudo -u {user} ") + m.to_scratch(cmd))
                    record.append(f"(cron, as {user}) $ {cmd}\n" + m.to_readme("\n".join(out)))
                    assert rc == 0 and not out, f"cron line {line!r}: exit {rc}, output (cron would mail it):\n" \
                        + "\n".join(out)
                    m.wait_archived()
            else:
                for cmd, shown in transcript(body):
                    if "SELECT now()" in cmd:
                        # A backup's stop time is kept to the second, and rebuild refuses a target
                        # it cannot prove is after it: a person reading the output takes longer.
                        time.sleep(1.1)
                    if cmd in (SERVICE, "sudo " + SERVICE):
                        rc, out = 0, m.restart()
                    else:
                        run_cmd = m.to_scratch(cmd)
                        for s, r in captured.items():
                            run_cmd = run_cmd.replace(s, r)
                        rc, out = m.sh(run_cmd)
                    record.append("$ " + cmd + ("\n" if out else "") + m.to_readme("\n".join(out)))
                    assert rc == 0, f"$ {cmd}\nexit {rc}:\n" + "\n".join(out) + \
                        "\nserver log:\n" + m.primary.log_tail(20)
                    want = [m.to_scratch(s) for s in shown]
                    pairs = matches(want, out)
                    if pairs is None and recording and len(want) == len(out):
                        pairs = list(zip(want, out))
                    assert pairs is not None or recording, \
                        (f"$ {cmd}\nprinted:\n" + "\n".join(out) +
                         "\n\nthe README shows (in scratch paths):\n" + "\n".join(want))
                    for s, r in pairs or []:
                        if s.strip() != r.strip() and len(s.strip()) >= 8:
                            captured[s.strip()] = r.strip()
                    m.wait_archived()
    finally:
        if recording:
            Path(recording).write_text("\n".join(record) + "\n")


def test_readme_is_a_front_page():
    """About 8 KB, at most 10; and every relative link of the README, CONTRIBUTING.md and
    docs/ leads to a file that exists."""
    size = README.stat().st_size
    assert size <= 10 * 1024, f"README.md has {size} bytes: move detail into docs/"
    pages = [README, REPO_ROOT / "CONTRIBUTING.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
    for page in pages:
        assert page.is_file(), page
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            path = (page.parent / target.split("#")[0]).resolve()
            assert path.exists(), f"{page.relative_to(REPO_ROOT)} links to {target}, which does not exist"
