"""The release tarball, the Debian package and the RPM.

Builds them as an operator or CI would (`make deb`, `make rpm`, into a temp
BUILD directory), checks the .deb's contents and lintian, installs it with
apt-get, runs the programs from /usr/bin and `man`, removes it (the
configuration stays) and purges it, and checks that the RPM carries the same
files.  Needs root, debhelper, lintian, rpm and man-db.

The machine is left as it was found: the package is purged even when a test
fails, and an /etc/walship or /var/spool/walship that existed before (from
`make install`) is moved aside for the test and put back afterwards.  Other
tests never see /usr/bin/walship: they run $WALSHIP_BIN's programs by path.
"""

import grp
import os
import pwd
import re
import shutil
import stat
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest

from pgcluster import remove_tree

REPO_ROOT = Path(__file__).resolve().parents[2]
VERSION = (REPO_ROOT / "VERSION").read_text().strip()
PROGRAMS = ("walship", "walship-push", "walship-fetch")
MAN_PAGES = ("man1/walship.1", "man1/walship-push.1", "man1/walship-fetch.1", "man5/walship.conf.5")
CONF = Path("/etc/walship/walship.conf")
SPOOL = Path("/var/spool/walship")
TIMER = "walship-prune.timer"

# What the .deb must hold, with modes (dpkg-deb -c; owners are root/root in
# the archive, postinst hands the configuration and the spool to postgres).
DEB_EXPECTED = {
    "./usr/bin/walship": "-rwxr-xr-x",
    "./usr/bin/walship-push": "-rwxr-xr-x",
    "./usr/bin/walship-fetch": "-rwxr-xr-x",
    **{f"./usr/share/man/{m}.gz": "-rw-r--r--" for m in MAN_PAGES},
    "./etc/walship/": "drwxr-xr-x",
    "./etc/walship/walship.conf": "-rw-r-----",
    "./var/spool/walship/": "drwx------",
    "./lib/systemd/system/walship-prune.service": "-rw-r--r--",
    "./lib/systemd/system/walship-prune.timer": "-rw-r--r--",
}

# The paths the .deb and the .rpm must both hold (after mapping Debian 12's
# /lib/systemd/system to %{_unitdir} and ignoring man page compression).
COMPARED = re.compile(r"^(/usr/bin/|/usr/share/man/|/etc/walship|/var/spool/walship|/usr/lib/systemd/system/)")


def env():
    """A clean environment: no MAKEFLAGS, BUILD or DEB_BUILD_OPTIONS of the caller."""
    return {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": os.environ.get("HOME", "/root"),
        "LC_ALL": "C.UTF-8",
        "LANG": "C.UTF-8",
        "TZ": "UTC",
        "DEBIAN_FRONTEND": "noninteractive",
        "MANWIDTH": "80",
    }


def sh(cmd, timeout=120, check=True, extra_env=None, **kwargs):
    """Run cmd as root; on failure (check) the test fails with its output."""
    p = subprocess.run([str(c) for c in cmd], env={**env(), **(extra_env or {})}, stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=timeout, **kwargs)
    if check:
        assert p.returncode == 0, (f"exit code {p.returncode}: {' '.join(map(str, cmd))}\n"
                                   f"stdout:\n{p.stdout[-6000:]}\nstderr:\n{p.stderr[-6000:]}")
    return p


def pkg_status():
    """dpkg's status of walship: "installed", "config-files" or "" (unknown)."""
    p = sh(["dpkg-query", "-W", "-f=${db:Status-Status}", "walship"], check=False)
    return p.stdout.strip() if p.returncode == 0 else ""


def purge():
    if pkg_status() not in ("", "not-installed"):
        sh(["dpkg", "--purge", "walship"], timeout=300)


@pytest.fixture(scope="module")
def machine():
    """Refuse to run over an installed walship; move a `make install`'s
    /etc/walship and /var/spool/walship aside; purge and restore afterwards."""
    assert os.geteuid() == 0, "the package tests install a package: run them as root"
    assert pkg_status() in ("", "not-installed"), \
        "walship is installed as a package here (dpkg -l walship): the test installs and purges it; remove it first"
    for prog in PROGRAMS:
        assert not Path("/usr/bin", prog).exists(), f"/usr/bin/{prog} exists: the test would replace it"
    saved = []
    for p in (Path("/etc/walship"), SPOOL):
        if p.exists():
            aside = p.with_name(p.name + ".test-packages-saved")
            assert not aside.exists(), f"{aside} exists (left by an interrupted run?): put it back or remove it"
            p.rename(aside)
            saved.append((p, aside))
    try:
        yield
    finally:
        purge()
        for p, aside in saved:
            if p.exists():
                shutil.rmtree(p)
            aside.rename(p)


@pytest.fixture(scope="module")
def build(machine):
    """BUILD directory with the tarball, the .deb and the .rpm made by make."""
    out = Path(tempfile.mkdtemp(prefix="walship-pkg-", dir="/tmp"))
    try:
        # nocheck: `make test` has run the unit tests already (make deb runs them too).
        sh(["make", "-C", REPO_ROOT, "deb", f"BUILD={out}"], timeout=900, extra_env={"DEB_BUILD_OPTIONS": "nocheck"})
        sh(["make", "-C", REPO_ROOT, "rpm", f"BUILD={out}"], timeout=900)
        yield out
    finally:
        remove_tree(out)


def the_deb(build):
    arch = sh(["dpkg", "--print-architecture"]).stdout.strip()
    deb = build / f"walship_{VERSION}_{arch}.deb"
    assert deb.is_file(), f"make deb wrote no {deb.name}: {sorted(p.name for p in build.iterdir())}"
    return deb


def the_rpm(build):
    rpms = sorted(build.glob(f"walship-{VERSION}-*.rpm"))
    assert len(rpms) == 1, f"make rpm should write one walship-{VERSION}-*.rpm: {sorted(p.name for p in build.iterdir())}"
    return rpms[0]


def deb_listing(deb):
    """{path: (mode string, owner/group)} from dpkg-deb -c."""
    entries = {}
    for line in sh(["dpkg-deb", "-c", deb]).stdout.splitlines():
        f = line.split()
        path = f[5]
        entries[path] = (f[0], f[1])
    return entries


def test_dist_tarball(build):
    tarball = build / f"walship-{VERSION}.tar.gz"
    assert tarball.is_file()
    with tarfile.open(tarball) as t:
        names = t.getnames()
        top = f"walship-{VERSION}"
        assert all(n == top or n.startswith(top + "/") for n in names), \
            [n for n in names if not n.startswith(top)][:5]
        rel = {n[len(top) + 1:] for n in names if n != top}
        for need in ("Makefile", "VERSION", "README.md", "src/bin/walship.c", "packaging/walship.conf.example",
                     "packaging/debian/control", "packaging/debian/rules", "packaging/rpm/walship.spec.in",
                     "packaging/rpm/walship.spec", "packaging/systemd/walship-prune.timer",
                     *(f"man/{Path(m).name}" for m in MAN_PAGES)):
            assert need in rel, f"{need} missing from {tarball.name}"
        bad = [n for n in rel if n.startswith(("build/", "build-", "debian/", ".git/"))
               or "node_modules" in n or "__pycache__" in n]
        assert not bad, f"{tarball.name} holds files that are no sources: {bad[:5]}"
        assert t.extractfile(f"{top}/VERSION").read().decode().strip() == VERSION
        spec = t.extractfile(f"{top}/packaging/rpm/walship.spec").read().decode()
        assert re.search(rf"^Version:\s+{re.escape(VERSION)}$", spec, re.M), "the spec in the tarball has no Version"
        assert "@VERSION@" not in spec


def test_deb_contents(build):
    deb = the_deb(build)
    entries = deb_listing(deb)
    for path, mode in DEB_EXPECTED.items():
        assert path in entries, f"{path} missing from {deb.name}:\n" + "\n".join(sorted(entries))
        assert entries[path] == (mode, "root/root"), f"{path}: {entries[path]}, expected {mode} root/root"

    fields = sh(["dpkg-deb", "-f", deb, "Package", "Version", "Depends"]).stdout
    assert f"Version: {VERSION}\n" in fields
    depends = re.search(r"^Depends: (.*)$", fields, re.M).group(1)
    names = {d.strip().split()[0] for d in depends.split(",")}
    # libcurl and libxml2 are loaded with dlopen: listed by hand, the rest computed.
    for lib in ("libcurl4", "libxml2", "libc6", "libzstd1", "libpq5", "libssh2-1", "libjansson4", "libssl3"):
        assert lib in names, f"Depends lacks {lib}: {depends}"

    conffiles = sh(["dpkg-deb", "--info", deb, "conffiles"]).stdout.split()
    assert conffiles == [str(CONF)]

    # The man pages carry VERSION, filled in by make.
    x = Path(tempfile.mkdtemp(prefix="walship-pkg-x-", dir="/tmp"))
    try:
        sh(["dpkg-deb", "-x", deb, x])
        for m in MAN_PAGES:
            text = sh(["zcat", x / "usr/share/man" / f"{m}.gz"]).stdout
            th = next(line for line in text.splitlines() if line.startswith(".TH "))
            assert f"walship {VERSION}" in th and "@VERSION@" not in text, f"{m}: {th}"
        # Release programs: no test hook (-DWALSHIP_TESTING) reads the environment, so that a
        # production lock's expiry cannot be shortened by WALSHIP_TEST_LOCK_EXPIRY.
        for prog in PROGRAMS:
            leaked = b"WALSHIP_TEST_" in (x / "usr/bin" / prog).read_bytes()
            assert not leaked, f"/usr/bin/{prog} of {deb.name} names a WALSHIP_TEST_ variable: built with test hooks"
    finally:
        remove_tree(x)


def test_deb_lintian(build):
    deb = the_deb(build)
    p = sh(["lintian", "--display-info", deb], timeout=300, check=False)
    errors = [line for line in p.stdout.splitlines() if line.startswith("E:")]
    assert not errors, "lintian errors:\n" + p.stdout
    assert p.returncode == 0, f"lintian exit code {p.returncode}\n{p.stdout}\n{p.stderr}"


def test_deb_install_run_remove_purge(build):
    deb = the_deb(build)
    try:
        sh(["apt-get", "install", "-y", "-q", "--no-install-recommends", deb], timeout=300)
        assert pkg_status() == "installed"

        for prog in PROGRAMS:
            p = sh([f"/usr/bin/{prog}", "--version"])
            assert p.stdout.split() == [prog, "(walship)", VERSION], p.stdout
        p = sh(["/usr/bin/walship-push", "--help"])
        assert "walship-push" in p.stdout and "%p" in p.stdout, p.stdout

        assert sh(["man", "-w", "walship-push"]).stdout.strip() == "/usr/share/man/man1/walship-push.1.gz"
        assert sh(["man", "-w", "5", "walship.conf"]).stdout.strip() == "/usr/share/man/man5/walship.conf.5.gz"
        page = sh(["man", "-P", "cat", "walship-push"]).stdout
        assert "walship-push" in page and f"walship {VERSION}" in page, page[-400:]

        st = CONF.stat()
        assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_uid == 0 and st.st_gid == grp.getgrnam("postgres").gr_gid, \
            f"{CONF}: {oct(st.st_mode)} {st.st_uid}:{st.st_gid}, expected 0640 root:postgres"
        st = SPOOL.stat()
        pg = pwd.getpwnam("postgres")
        assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700 \
            and (st.st_uid, st.st_gid) == (pg.pw_uid, pg.pw_gid), \
            f"{SPOOL}: {oct(st.st_mode)} {st.st_uid}:{st.st_gid}, expected 0700 postgres:postgres"

        # The units are installed, the timer is not enabled (no symlink in any
        # .wants directory, which is what `systemctl enable` would make).
        for unit in ("walship-prune.service", TIMER):
            assert Path("/lib/systemd/system", unit).is_file()
        wanted = list(Path("/etc/systemd/system").glob(f"*.wants/{TIMER}"))
        assert not wanted, f"the package enabled the timer: {wanted}"

        sh(["dpkg", "--remove", "walship"], timeout=300)
        assert pkg_status() == "config-files"
        for prog in PROGRAMS:
            assert not Path("/usr/bin", prog).exists()
        assert CONF.is_file(), "dpkg --remove took the configuration file (a conffile stays until purge)"

        sh(["dpkg", "--purge", "walship"], timeout=300)
        assert pkg_status() in ("", "not-installed")
        assert not CONF.exists() and not CONF.parent.exists()
        assert not SPOOL.exists()
    finally:
        purge()


def test_deb_without_postgres_user(build, tmp_path):
    """On a host without PostgreSQL (no postgres user) the package installs,
    leaves the configuration and the spool root's and says what to run; after
    the user exists, dpkg-reconfigure hands them over."""
    deb = the_deb(build)
    passwd, group = tmp_path / "passwd", tmp_path / "group"
    passwd.write_text("".join(line for line in open("/etc/passwd") if not line.startswith("postgres:")))
    group.write_text("".join(line for line in open("/etc/group") if not line.startswith("postgres:")))
    try:
        # A private mount namespace where /etc/passwd and /etc/group lack postgres.
        p = sh(["unshare", "--mount", "--propagation", "private", "sh", "-ec",
                'mount --bind "$1" /etc/passwd; mount --bind "$2" /etc/group; '
                'if getent passwd postgres; then exit 9; fi; dpkg -i "$3"', "sh", passwd, group, deb], timeout=300)
        assert "dpkg-reconfigure walship" in p.stderr, p.stderr
        st = CONF.stat()
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o640, 0, 0)
        st = SPOOL.stat()
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o700, 0, 0)

        sh(["dpkg-reconfigure", "walship"], timeout=300)
        assert CONF.stat().st_gid == grp.getgrnam("postgres").gr_gid
        assert SPOOL.stat().st_uid == pwd.getpwnam("postgres").pw_uid
    finally:
        purge()


def test_rpm_same_files(build):
    deb, rpm = the_deb(build), the_rpm(build)

    def norm(path):
        path = path.rstrip("/")
        if path.startswith("/lib/systemd/system/"):
            path = "/usr" + path
        return re.sub(r"\.gz$", "", path) if path.startswith("/usr/share/man/") else path

    deb_paths = {norm(p[1:]) for p in deb_listing(deb)}
    rpm_paths = {norm(p) for p in sh(["rpm", "-qlp", rpm]).stdout.split()}
    deb_paths = {p for p in deb_paths if COMPARED.match(p) and p not in ("/usr/bin", "/usr/share/man")}
    rpm_paths = {p for p in rpm_paths if COMPARED.match(p)}
    # Directories that only dpkg lists (rpm lists only what it owns).
    deb_paths -= {"/usr/share/man/man1", "/usr/share/man/man5", "/usr/lib/systemd/system"}
    assert deb_paths == rpm_paths, f"only in the .deb: {sorted(deb_paths - rpm_paths)}; " \
                                   f"only in the .rpm: {sorted(rpm_paths - deb_paths)}"

    q = sh(["rpm", "-qp", "--qf", "%{VERSION}\n", rpm]).stdout.strip()
    assert q == VERSION
    files = sh(["rpm", "-qp", "--qf", "[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILEFLAGS:fflags} %{FILENAMES}\n]",
                rpm]).stdout
    attrs = {line.split()[-1]: line.split()[:-1] for line in files.splitlines()}
    assert attrs[str(CONF)][:2] == ["-rw-r-----", "root:postgres"], attrs[str(CONF)]
    assert "c" in attrs[str(CONF)][2] and "n" in attrs[str(CONF)][2], f"{CONF} is not %config(noreplace)"
    assert attrs[str(SPOOL)][:2] == ["drwx------", "postgres:postgres"], attrs[str(SPOOL)]
    requires = sh(["rpm", "-qpR", rpm]).stdout.split("\n")
    for need in ("libcurl >= 7.59", "libxml2", "libzstd.so.1()(64bit)", "libpq.so.5()(64bit)"):
        assert need in [r.strip() for r in requires], f"Requires lacks {need}:\n" + "\n".join(requires)
