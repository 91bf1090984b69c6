"""Helpers for walship's integration tests: running programs as the postgres
user, throw-away PostgreSQL clusters, and small file utilities.

Everything here works on paths under /tmp that the tests create and remove.
Server-side programs run as the unprivileged "postgres" account (PostgreSQL
refuses root); the tests themselves run as root on CI.
"""

import hashlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

PG_BIN = Path(os.environ.get("WALSHIP_PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_USER = "postgres"
# The version matrix (tests/matrix/run): a Debian root of another release, holding that release's
# PostgreSQL and walship built there, with /tmp, /proc, /sys and /dev of this host mounted in it.
# Every program the tests start by path through popen() runs chrooted into it; files, sockets and
# ports are shared, so the tests themselves (psycopg, file checks, zstd) run here unchanged.
TEST_ROOT = os.environ.get("WALSHIP_TEST_ROOT") or None


def _pg_major():
    """The major under test: $WALSHIP_PG_MAJOR, else the version in PG_BIN's path (Debian's layout)."""
    if os.environ.get("WALSHIP_PG_MAJOR"):
        return int(os.environ["WALSHIP_PG_MAJOR"])
    parts = PG_BIN.parts
    return int(parts[-2]) if len(parts) >= 2 and parts[-2].isdigit() else 15


PG_MAJOR = _pg_major()

# The environment of every program the tests start: nothing inherited, so a
# WALSHIP_* or PG* variable of the caller's shell cannot change a result, and
# C messages so that strerror() texts are the English ones tests look for.
WAL_SEG_16M = 16 * 1024 * 1024
FIRST_SEGMENT = "000000010000000000000001"

# UTF8 so that psycopg returns text as str (SQL_ASCII would give bytes).
INITDB_OPTS = ["-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"]

BASE_ENV = {
    "PATH": f"{PG_BIN}:/usr/local/bin:/usr/bin:/bin",
    "LC_ALL": "C",
    "LANG": "C",
    "HOME": "/tmp",
    "TZ": "UTC",
}


def _am_root():
    return os.geteuid() == 0


def _user_ids(user):
    pw = pwd.getpwnam(user)
    return pw.pw_uid, pw.pw_gid


def popen(cmd, cwd=None, user=PG_USER, env=None, **kwargs):
    """Start cmd directly (no runuser in between, so signals and wait4()
    reach the program itself) as user; user=None runs as the caller."""
    full_env = dict(BASE_ENV)
    if env:
        full_env.update(env)
    if TEST_ROOT is not None and "/" in str(cmd[0]):
        return _popen_in_root(cmd, cwd, user, full_env, kwargs)
    if user is not None and _am_root() and user != "root":
        uid, gid = _user_ids(user)
        kwargs.setdefault("user", uid)
        kwargs.setdefault("group", gid)
        kwargs.setdefault("extra_groups", [])
    return subprocess.Popen([str(c) for c in cmd], cwd=cwd, env=full_env, **kwargs)


def _popen_in_root(cmd, cwd, user, env, kwargs):
    """popen() for the version matrix: chroot into TEST_ROOT, change back to cwd (the same path
    there), then drop to user, all in the child before exec, so that the process started is the
    program itself, as outside the matrix.  Programs named by a path (PostgreSQL's, walship's) run
    there; tools named bare (mount, zstd, sleep) run on this host, so that a mount a test makes is
    this host's, as outside the matrix."""
    if not _am_root():
        raise RuntimeError("the version matrix (WALSHIP_TEST_ROOT) runs as root: chroot needs it")
    ids = _user_ids(user) if user is not None and user != "root" else None
    wd = str(cwd) if cwd is not None else "/"

    def enter():
        os.chroot(TEST_ROOT)
        os.chdir(wd)
        if ids is not None:
            os.setgroups([])
            os.setgid(ids[1])
            os.setuid(ids[0])

    return subprocess.Popen([str(c) for c in cmd], cwd=cwd, env=env, preexec_fn=enter, **kwargs)


def program_path(path):
    """A path this host shows (a process's /proc links) as the programs see it: without TEST_ROOT."""
    path = str(path)
    if TEST_ROOT is not None and path.startswith(TEST_ROOT.rstrip("/") + "/"):
        return path[len(TEST_ROOT.rstrip("/")):]
    return path


def host_path(path):
    """Where a path of the programs' world is on this host: under TEST_ROOT in the matrix."""
    return Path(TEST_ROOT + str(path)) if TEST_ROOT is not None else Path(path)


def run(cmd, cwd=None, user=PG_USER, env=None, timeout=120, input=None):
    """Run cmd and return (returncode, stdout, stderr) as text.

    A program still running after timeout seconds is killed with its whole
    process group and the test fails with what it printed so far.
    """
    proc = popen(
        cmd,
        cwd=cwd,
        user=user,
        env=env,
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(input=input.encode() if isinstance(input, str) else input, timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = proc.communicate()
        raise AssertionError(
            f"command timed out after {timeout} s: {' '.join(map(str, cmd))}\n"
            f"stdout:\n{out.decode(errors='replace')}\nstderr:\n{err.decode(errors='replace')}"
        )
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def check_run(cmd, **kwargs):
    """run() that fails the test on a non-zero exit, showing the output."""
    rc, out, err = run(cmd, **kwargs)
    assert rc == 0, f"command failed with exit code {rc}: {' '.join(map(str, cmd))}\nstdout:\n{out}\nstderr:\n{err}"
    return out, err


def chown_pg(path, recursive=False):
    if not _am_root():
        return
    uid, gid = _user_ids(PG_USER)
    os.chown(path, uid, gid)
    if recursive:
        for root, dirs, files in os.walk(path):
            for n in dirs + files:
                os.chown(os.path.join(root, n), uid, gid, follow_symlinks=False)


def make_pg_dir(path, mode=0o700):
    """A directory owned by the postgres user."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    chown_pg(path)
    os.chmod(path, mode)
    return path


def write_pg_file(path, data, mode=0o600):
    """A file owned by the postgres user with the given content."""
    path = Path(path)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    chown_pg(path)
    os.chmod(path, mode)
    return path


def make_tmp_root(prefix="walship-it-"):
    root = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    os.chmod(root, 0o755)
    return root


def _unmount_below(root):
    """Unmount anything mounted at or below root (a test's tmpfs)."""
    try:
        with open("/proc/self/mounts") as f:
            points = [line.split()[1] for line in f]
    except OSError:
        return
    root_s = str(root)
    for p in sorted(points, key=len, reverse=True):
        p = p.replace("\\040", " ")
        if p == root_s or p.startswith(root_s + "/"):
            subprocess.run(["umount", "-l", p], check=False)


def remove_tree(root):
    """rmtree that first unmounts and restores permissions the tests took away."""
    root = Path(root)
    if not root.exists():
        return
    _unmount_below(root)

    def fix(func, path, exc):
        try:
            # Never above root: rmtree's last call is on root itself, and its parent is /tmp.
            if Path(path) != root:
                os.chmod(os.path.dirname(path), 0o700)
            os.chmod(path, 0o700)
        except OSError:
            pass
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.unlink(path)
        except OSError:
            pass

    for dirpath, dirnames, _ in os.walk(root):
        for d in dirnames:
            p = os.path.join(dirpath, d)
            try:
                if not os.path.islink(p) and (os.stat(p).st_mode & 0o700) != 0o700:
                    os.chmod(p, 0o700)
            except OSError:
                pass
    shutil.rmtree(root, onerror=fix)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sha256_file(path, bufsize=1 << 20):
    """Hex SHA-256 of a file, streamed (works for 1 GiB segments)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(bufsize)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def sha256_bytes(data):
    return hashlib.sha256(data).hexdigest()


def zstd_decompress(path):
    """The content of a stored object, decoded by the zstd CLI (no walship involved)."""
    p = subprocess.run(["zstd", "-q", "-d", "-c", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.returncode == 0, f"zstd -d failed on {path}: {p.stderr.decode(errors='replace')}"
    return p.stdout


def zstd_sha256(path):
    """SHA-256 of a stored object's decoded content, streamed through zstd -d."""
    h = hashlib.sha256()
    with subprocess.Popen(["zstd", "-q", "-d", "-c", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE) as p:
        while True:
            b = p.stdout.read(1 << 20)
            if not b:
                break
            h.update(b)
        err = p.stderr.read()
        rc = p.wait()
    assert rc == 0, f"zstd -d failed on {path}: {err.decode(errors='replace')}"
    return h.hexdigest()


def tree_listing(root):
    """Every file and directory under root (dot files included) with size and
    content hash, to prove that a failed command wrote nothing."""
    root = Path(root)
    out = {}
    if not root.exists():
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            out[os.path.relpath(os.path.join(dirpath, d), root) + "/"] = "dir"
        for n in filenames:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            try:
                digest = sha256_file(p)
            except OSError:
                digest = "unreadable"
            out[os.path.relpath(p, root)] = (st.st_size, digest)
    return out


def wait_for(predicate, timeout, message, interval=0.2):
    """Poll predicate() until it returns a true value; fail with message()."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as e:  # the server may still be starting
            last_exc = e
        if time.monotonic() > deadline:
            msg = message() if callable(message) else message
            if last_exc is not None:
                msg += f"\nlast error: {last_exc!r}"
            raise AssertionError(f"timed out after {timeout} s: {msg}")
        time.sleep(interval)


def _conf_value(v):
    if isinstance(v, bool):
        return "on" if v else "off"
    if isinstance(v, int):
        return str(v)
    return "'" + str(v).replace("'", "''") + "'"


class Cluster:
    """One PostgreSQL cluster in base/<name>: data/ for the data directory,
    the directory itself for the Unix socket, server.log for the log."""

    def __init__(self, base, name, bindir=None):
        self.name = name
        # Another major's programs (the version matrix's pg_upgrade test); PG_BIN's by default.
        self.bin = Path(bindir) if bindir is not None else PG_BIN
        self.dir = make_pg_dir(Path(base) / name, 0o755)
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self.port = free_port()
        self.started = False

    # -- creation ---------------------------------------------------------

    def initdb(self, wal_segsize=None, extra=()):
        cmd = [self.bin / "initdb", "-D", self.data, *INITDB_OPTS]
        if wal_segsize:
            cmd.append(f"--wal-segsize={wal_segsize}")
        cmd.extend(extra)
        check_run(cmd, timeout=300)
        self._base_settings()
        return self

    def basebackup_from(self, source, extra=("-X", "none")):
        """Fill this cluster's data directory with pg_basebackup of source."""
        check_run(
            [self.bin / "pg_basebackup", "-D", self.data, "-h", source.dir, "-p", source.port, "-U", "postgres",
             "-c", "fast", "--no-sync", *extra],
            timeout=300,
        )
        # The copy carries the source's postgresql.conf: later lines win.
        self._base_settings()
        return self

    def _base_settings(self):
        self.configure(
            port=self.port,
            unix_socket_directories=str(self.dir),
            listen_addresses="",
            logging_collector=False,
            shared_buffers="32MB",
            max_wal_senders=4,
            wal_level="replica",
            fsync=True,
        )

    def configure(self, **settings):
        """Append settings to postgresql.conf (later lines win)."""
        with open(self.data / "postgresql.conf", "a") as f:
            f.write("\n# walship integration tests\n")
            for k, v in settings.items():
                f.write(f"{k} = {_conf_value(v)}\n")

    def touch(self, name):
        write_pg_file(self.data / name, b"")

    # -- running ----------------------------------------------------------

    def start(self, timeout=120):
        rc, out, err = run(
            [self.bin / "pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", str(timeout), "start"],
            timeout=timeout + 30,
        )
        if rc != 0:
            raise AssertionError(
                f"cluster {self.name} did not start (pg_ctl exit {rc})\n{out}\n{err}\nserver log:\n{self.log_tail()}"
            )
        self.started = True
        return self

    def stop(self, mode="fast"):
        if not (self.data / "postmaster.pid").exists():
            self.started = False
            return
        run([self.bin / "pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "60", "stop"], timeout=90)
        self.started = False

    def promote(self, timeout=60):
        rc, out, err = run([self.bin / "pg_ctl", "-D", self.data, "-w", "-t", str(timeout), "promote"],
                           timeout=timeout + 30)
        assert rc == 0, f"pg_ctl promote failed: {out}\n{err}\nserver log:\n{self.log_tail()}"

    def log_tail(self, lines=60):
        try:
            text = self.log.read_text(errors="replace")
        except OSError as e:
            return f"(no log: {e})"
        return "\n".join(text.splitlines()[-lines:])

    def log_text(self):
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    # -- SQL --------------------------------------------------------------

    def connect(self):
        return psycopg.connect(host=str(self.dir), port=self.port, user="postgres", dbname="postgres",
                               autocommit=True, connect_timeout=10)

    def sql(self, query, params=None):
        """Run one statement; the rows it returns (or [])."""
        with self.connect() as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    def scalar(self, query, params=None):
        rows = self.sql(query, params)
        return rows[0][0] if rows else None

    def pgbench(self, *args, timeout=300):
        return check_run([self.bin / "pgbench", "-h", self.dir, "-p", self.port, "-U", "postgres", *args,
                          "postgres"], timeout=timeout)

    # -- WAL --------------------------------------------------------------

    def switch_wal(self):
        """Force a segment switch after a small write (a switch on an empty
        segment does nothing); the name of the segment just completed."""
        self.sql("CREATE TABLE IF NOT EXISTS walship_switch (x int)")
        self.sql("INSERT INTO walship_switch VALUES (1)")
        return self.scalar("SELECT pg_walfile_name(pg_switch_wal())")

    def wait_archived(self, upto, timeout=120):
        """Wait until the archiver has stored every segment up to upto and no
        .ready file is left; fail if the archiver reports a failure."""
        status = self.data / "pg_wal" / "archive_status"

        def state():
            row = self.sql("SELECT last_archived_wal, failed_count, last_failed_wal FROM pg_stat_archiver")[0]
            ready = sorted(p.name for p in status.glob("*.ready"))
            return row, ready

        def done():
            (last, failed, last_failed), ready = state()
            assert failed == 0, (
                f"archive_command failed {failed} time(s), last on {last_failed}\nserver log:\n{self.log_tail()}"
            )
            return last is not None and last[:24] >= upto and not ready

        def message():
            try:
                row, ready = state()
            except Exception as e:
                row, ready = repr(e), "?"
            return (f"archiving up to {upto}: pg_stat_archiver={row}, .ready files={ready}\n"
                    f"server log:\n{self.log_tail()}")

        deadline = time.monotonic() + timeout
        while True:
            if done():
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s: {message()}")
            time.sleep(0.2)


class ClusterFactory:
    """Creates clusters under base and stops every one of them at teardown."""

    def __init__(self, base):
        self.base = Path(base)
        self.clusters = []

    def new(self, name, bindir=None):
        c = Cluster(self.base, name, bindir)
        self.clusters.append(c)
        return c

    def cleanup(self):
        for c in reversed(self.clusters):
            try:
                if (c.data / "postmaster.pid").exists():
                    run([c.bin / "pg_ctl", "-D", c.data, "-m", "immediate", "-w", "-t", "60", "stop"], timeout=90)
            except Exception:
                pass


class RepoView:
    """Read-only view of a local repository's files, as the tests check them."""

    def __init__(self, root):
        self.root = Path(root)

    @property
    def epoch(self):
        with open(self.root / "walship.json") as f:
            return json.load(f)["epochs"][-1]["id"]

    def key_path(self, name, epoch=None):
        epoch = epoch or self.epoch
        if name.endswith(".history"):
            return self.root / epoch / "wal" / name
        return self.root / epoch / "wal" / name[:16] / name

    def files(self):
        """Relative paths of every file (dot files included)."""
        out = []
        for dirpath, _, filenames in os.walk(self.root):
            for n in filenames:
                out.append(os.path.relpath(os.path.join(dirpath, n), self.root))
        return sorted(out)

    def objects(self):
        """Visible WAL objects: {name: path} for every non-dot file under */wal/."""
        out = {}
        for dirpath, _, filenames in os.walk(self.root):
            rel = os.path.relpath(dirpath, self.root).split(os.sep)
            if len(rel) < 2 or rel[1] != "wal":
                continue
            for n in filenames:
                if not n.startswith("."):
                    out[n] = Path(dirpath) / n
        return out

    def dot_files(self):
        out = []
        for dirpath, _, filenames in os.walk(self.root):
            out.extend(os.path.join(dirpath, n) for n in filenames if n.startswith("."))
        return sorted(out)


def describe(rc, out, err):
    return f"exit code {rc}\nstdout:\n{out}\nstderr:\n{err}"


def pg_copy(src, dst, offset=None, data=None, length=None):
    """Copy src to dst (owned by postgres), optionally truncated to length and
    with data written at offset: a segment that differs from the original."""
    with open(src, "rb") as f:
        content = bytearray(f.read() if length is None else f.read(length))
    if offset is not None:
        content[offset:offset + len(data)] = data
    return write_pg_file(dst, bytes(content), 0o600)


def flip_byte(path, offset):
    """Invert one byte of a file in place (as root; the mode may be read-only)."""
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0xFF]))


def has_phrase(text, *phrases):
    """True if text contains any of phrases (case-insensitive)."""
    low = text.lower()
    return any(p.lower() in low for p in phrases)


# --------------------------------------------------------------------------
# Debian clusters (postgresql-common): what most DBAs run

DEBIAN_VERSION = "15"
DEBIAN_PREFIX = "walship-it-"
DEBIAN_SOCKET_DIR = Path("/var/run/postgresql")


def debian_tools_problem():
    """Why postgresql-common's tools cannot be used here, or None."""
    for tool in ("pg_createcluster", "pg_ctlcluster", "pg_dropcluster", "pg_lsclusters"):
        if shutil.which(tool, path="/usr/bin:/usr/sbin") is None:
            return f"{tool} is missing (apt-get install postgresql-common)"
    if not _am_root():
        return "pg_createcluster needs root"
    return None


def drop_stale_debian_clusters():
    """Drop walship-it-PID-* clusters whose test session (PID) is gone: a killed run leaves them
    in /etc/postgresql, and their ports would be taken."""
    etc = Path("/etc/postgresql") / DEBIAN_VERSION
    if not etc.is_dir():
        return
    for d in etc.glob(DEBIAN_PREFIX + "*"):
        try:
            pid = int(d.name[len(DEBIAN_PREFIX):].split("-")[0])
        except ValueError:
            continue
        try:
            os.kill(pid, 0)
            continue
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        subprocess.run(["pg_dropcluster", "--stop", DEBIAN_VERSION, d.name], capture_output=True, timeout=120)


class DebianCluster(Cluster):
    """A cluster made the way Debian and Ubuntu users have them: pg_createcluster 15 NAME, its
    configuration in /etc/postgresql/15/NAME (postgresql.conf with include_dir 'conf.d',
    pg_hba.conf, pg_ident.conf), data in /var/lib/postgresql/15/NAME, the socket in
    /var/run/postgresql, the log in /var/log/postgresql, started and stopped with pg_ctlcluster.
    The test's settings go in conf.d/walship-tests.conf. Always dropped with pg_dropcluster."""

    def __init__(self, tag):
        self.version = DEBIAN_VERSION
        self.name = f"{DEBIAN_PREFIX}{os.getpid()}-{tag}-{os.urandom(2).hex()}"
        self.etc = Path("/etc/postgresql") / self.version / self.name
        self.data = Path("/var/lib/postgresql") / self.version / self.name
        self.dir = DEBIAN_SOCKET_DIR
        self.log = Path("/var/log/postgresql") / f"postgresql-{self.version}-{self.name}.log"
        self.port = free_port()
        self.started = False
        self.created = False

    @property
    def spec(self):
        return f"{self.version}/{self.name}"

    @property
    def conf(self):
        return self.etc / "postgresql.conf"

    @property
    def test_conf(self):
        return self.etc / "conf.d" / "walship-tests.conf"

    def create(self):
        check_run(["pg_createcluster", self.version, self.name, "-p", str(self.port), "--locale=C.UTF-8",
                   "-e", "UTF8", "--", "--auth-local=trust", "--auth-host=trust", "--no-sync"],
                  user=None, timeout=300)
        self.created = True
        self.configure(
            listen_addresses="",
            shared_buffers="32MB",
            max_wal_senders=4,
            wal_level="replica",
            ssl=False,
        )
        return self

    def configure(self, **settings):
        """Append settings to conf.d/walship-tests.conf (later lines win)."""
        with open(self.test_conf, "a") as f:
            for k, v in settings.items():
                f.write(f"{k} = {_conf_value(v)}\n")
        os.chown(self.test_conf, *_user_ids(PG_USER))

    def ctl(self, action, *extra, timeout=120):
        return run(["pg_ctlcluster", self.version, self.name, action, *extra], user=None, timeout=timeout)

    def start(self, timeout=120):
        rc, out, err = self.ctl("start", timeout=timeout + 30)
        if rc != 0:
            raise AssertionError(f"cluster {self.spec} did not start (pg_ctlcluster exit {rc})\n{out}\n{err}\n"
                                 f"server log:\n{self.log_tail()}")
        self.started = True
        return self

    def stop(self, mode="fast"):
        if not (self.data / "postmaster.pid").exists():
            self.started = False
            return
        self.ctl("stop", "-m", mode, timeout=90)
        self.started = False

    def promote(self, timeout=60):
        rc, out, err = self.ctl("promote", timeout=timeout + 30)
        assert rc == 0, f"pg_ctlcluster promote failed: {out}\n{err}\nserver log:\n{self.log_tail()}"

    def drop(self):
        if self.created:
            subprocess.run(["pg_dropcluster", "--stop", self.version, self.name], capture_output=True, timeout=120)
            self.created = False


class DebianClusterFactory:
    """Creates Debian clusters and drops every one of them at teardown."""

    def __init__(self):
        self.clusters = []

    def new(self, tag="c"):
        c = DebianCluster(tag)
        self.clusters.append(c)
        return c.create()

    def cleanup(self):
        for c in reversed(self.clusters):
            try:
                c.drop()
            except Exception:
                pass
