"""Fixtures for walship's integration tests.

The programs under test come from $WALSHIP_BIN (default: <repo>/build/testing/bin,
the test build that `make testing` makes, with the test hooks compiled in) and
are copied into a session temp dir so the postgres user can run them even
when the checkout is in a root-only directory.  Missing programs, or release
programs (`make`, build/bin: the tests of a killed lock owner would wait five
minutes there), end the session with an error: these tests never skip.
"""

import os
import shlex
import shutil
from pathlib import Path

import pytest

from pgcluster import (
    INITDB_OPTS,
    RepoView,
    PG_BIN,
    PG_USER,
    ClusterFactory,
    DebianClusterFactory,
    debian_tools_problem,
    drop_stale_debian_clusters,
    host_path,
    check_run,
    chown_pg,
    make_pg_dir,
    make_tmp_root,
    remove_tree,
    run,
    write_pg_file,
)

# Session-wide real servers (imported so every test file can use them).
from s3server import s3bucket, s3server  # noqa: E402,F401
from sshd import own_sshd, sshd  # noqa: E402,F401

REPO_ROOT = Path(__file__).resolve().parents[2]
PROGRAMS = ("walship", "walship-push", "walship-fetch")
# The programs the tests run: the test build (-DWALSHIP_TESTING).
TEST_BIN = Path(os.environ.get("WALSHIP_BIN") or REPO_ROOT / "build" / "testing" / "bin")
# A variable only the test build reads (src/repo/lock.c): how its programs are told from release ones.
TEST_HOOK = b"WALSHIP_TEST_LOCK_EXPIRY"

_session = {}


def pytest_sessionstart(session):
    src = TEST_BIN
    problems = []
    for prog in PROGRAMS:
        p = src / prog
        if not (p.is_file() and os.access(p, os.X_OK)):
            problems.append(f"missing or not executable: {p}")
    if not problems and TEST_HOOK not in (src / "walship").read_bytes():
        problems.append(f"{src} holds release programs, built without the test hooks (-DWALSHIP_TESTING)")
    for tool in ("initdb", "pg_ctl", "postgres", "pg_basebackup", "pgbench"):
        if not host_path(PG_BIN / tool).exists():
            problems.append(f"PostgreSQL program missing: {host_path(PG_BIN / tool)}")
    if shutil.which("zstd") is None:
        problems.append("the zstd command-line tool is missing (apt-get install zstd)")
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam(PG_USER)
        except KeyError:
            problems.append(f'user "{PG_USER}" does not exist (install postgresql-15)')
    if problems:
        pytest.exit("walship integration tests cannot run:\n  " + "\n  ".join(problems)
                    + "\n(build with `make testing`, or set WALSHIP_BIN to build/testing/bin)", returncode=1)

    preload = Path(os.environ.get("WALSHIP_PRELOAD") or REPO_ROOT / "build" / "preload")
    shims = sorted(preload.glob("*.so")) if preload.is_dir() else []
    if not shims:
        pytest.exit(f"walship integration tests cannot run: no test shims in {preload} "
                    "(build them with `make preload`, or set WALSHIP_PRELOAD)", returncode=1)

    bindir = make_tmp_root("walship-bin-")
    for prog in PROGRAMS:
        dst = bindir / prog
        shutil.copy2(src / prog, dst)
        os.chmod(dst, 0o755)
    for shim in shims:
        shutil.copy2(shim, bindir / shim.name)
        os.chmod(bindir / shim.name, 0o644)
    _session["bindir"] = bindir
    _session["asan"] = b"__asan_init" in (src / "walship-fetch").read_bytes()
    _session["templates"] = make_tmp_root("walship-tpl-")


def pytest_sessionfinish(session, exitstatus):
    for key in ("bindir", "templates"):
        if key in _session:
            remove_tree(_session.pop(key))


# --------------------------------------------------------------------------
# walship's programs and repository


class Walship:
    """Runs walship's programs as the postgres user with a private, empty
    configuration file (so /etc/walship is never read)."""

    def __init__(self, bindir, work):
        self.bindir = Path(bindir)
        self.walship = self.bindir / "walship"
        self.push_bin = self.bindir / "walship-push"
        self.fetch_bin = self.bindir / "walship-fetch"
        self.work = Path(work)
        self.config = write_pg_file(self.work / "walship.conf", b"", 0o600)

    def _opts(self, repo, config):
        opts = [f"--config={config or self.config}"]
        if repo is not None:
            opts.append(f"--repo={repo}")
        return opts

    def push(self, repo, path, name, cwd, *opts, config=None, timeout=120, env=None):
        cmd = [self.push_bin, *self._opts(repo, config), *opts, path, name]
        return run(cmd, cwd=cwd, timeout=timeout, env=env)

    def fetch(self, repo, name, path, cwd, *opts, config=None, timeout=120, env=None):
        cmd = [self.fetch_bin, *self._opts(repo, config), *opts, name, path]
        return run(cmd, cwd=cwd, timeout=timeout, env=env)

    def init(self, repo, pgdata, *opts, config=None):
        cmd = [self.walship, *self._opts(None, config), "init", f"--repo={repo}", f"--pgdata={pgdata}", *opts]
        out, err = check_run(cmd, cwd=self.work)
        return RepoView(repo)

    def archive_command(self, repo, *opts):
        return " ".join(shlex.quote(str(x)) for x in
                        [self.push_bin, f"--config={self.config}", f"--repo={repo}", *opts]) + " %p %f"

    def restore_command(self, repo, *opts):
        return " ".join(shlex.quote(str(x)) for x in
                        [self.fetch_bin, f"--config={self.config}", f"--repo={repo}", *opts]) + " %f %p"


class Preload:
    """The LD_PRELOAD shims of tests/preload/ (built by `make preload`), copied beside the
    programs under test so that the postgres user can load them."""

    def path(self, name):
        path = _session["bindir"] / f"{name}.so"
        assert path.is_file(), f"test shim {path} is missing: build it with `make preload`"
        return path

    def env(self, name, **extra):
        """env that loads shim name into walship's programs (also under `make asan`, whose
        runtime otherwise insists on coming first)."""
        env = {"LD_PRELOAD": str(self.path(name)), **extra}
        if _session["asan"]:
            env["ASAN_OPTIONS"] = "verify_asan_link_order=0"
        return env


@pytest.fixture(scope="session")
def preload():
    return Preload()


@pytest.fixture(scope="session")
def sanitized():
    """Whether the programs under test are a sanitizer build (make asan): two to three times
    the CPU per call, so rates mean nothing there."""
    return _session["asan"]


@pytest.fixture
def fail_alloc(preload):
    """env for a program whose allocations of at least n bytes fail, as on a
    machine out of memory (tests/preload/failmalloc.c)."""
    return lambda n: preload.env("failmalloc", WALSHIP_TEST_FAIL_ALLOC=str(n))


# --------------------------------------------------------------------------
# data directories made once per session and copied per test


def _template(name, wal_segsize=None):
    """A data directory made by initdb once per session; never started."""
    base = _session["templates"]
    data = base / name / "data"
    if not data.exists():
        make_pg_dir(base / name, 0o755)
        cmd = [PG_BIN / "initdb", "-D", data, *INITDB_OPTS]
        if wal_segsize:
            cmd.append(f"--wal-segsize={wal_segsize}")
        check_run(cmd, timeout=300)
    return data


def copy_datadir(template, dest):
    """Copy what walship reads of a data directory (PG_VERSION,
    global/pg_control, pg_wal/): copying the whole directory (a thousand
    small catalog files) costs about a second per test on a slow disk."""
    dest = make_pg_dir(dest, 0o700)
    make_pg_dir(dest / "global", 0o700)
    make_pg_dir(dest / "pg_wal", 0o700)
    make_pg_dir(dest / "pg_wal" / "archive_status", 0o700)
    for rel in ["PG_VERSION", "global/pg_control", "postgresql.conf"] + \
            [f"pg_wal/{p.name}" for p in (template / "pg_wal").iterdir() if p.is_file()]:
        shutil.copyfile(template / rel, dest / rel)
        chown_pg(dest / rel)
        os.chmod(dest / rel, 0o600)
    return dest


@pytest.fixture
def tmp():
    root = make_tmp_root()
    yield root
    remove_tree(root)


@pytest.fixture
def work(tmp):
    """A directory the postgres user may write in."""
    return make_pg_dir(tmp / "w", 0o755)


@pytest.fixture
def ws(work):
    return Walship(_session["bindir"], work)


@pytest.fixture
def clusters(tmp):
    factory = ClusterFactory(tmp)
    yield factory
    factory.cleanup()


@pytest.fixture
def debian_clusters():
    """Clusters made with pg_createcluster (postgresql-common), dropped afterwards."""
    problem = debian_tools_problem()
    if problem:
        pytest.fail(f"Debian cluster tests cannot run: {problem}")
    drop_stale_debian_clusters()
    factory = DebianClusterFactory()
    yield factory
    factory.cleanup()


@pytest.fixture
def datadir(tmp):
    """A freshly initdb'd (never started) data directory with one real
    16 MiB segment, pg_wal/000000010000000000000001."""
    return copy_datadir(_template("main"), tmp / "data")


@pytest.fixture
def foreign_datadir(tmp):
    """The data directory of another cluster (another system identifier)."""
    return copy_datadir(_template("foreign"), tmp / "foreign")


@pytest.fixture
def datadir64(tmp):
    """A data directory with 64 MiB WAL segments."""
    return copy_datadir(_template("seg64", wal_segsize=64), tmp / "data64")


@pytest.fixture
def datadir1m(tmp):
    """A data directory with 1 MiB WAL segments (initdb --wal-segsize=1)."""
    return copy_datadir(_template("seg1", wal_segsize=1), tmp / "data1m")


@pytest.fixture
def repo(ws, work, datadir):
    """A repository initialised for datadir's cluster."""
    return ws.init(work / "repo", datadir)
