"""libcurl and libxml2 are loaded with dlopen only when an S3 repository is
opened (src/store/s3_lib.h): the programs do not link them, so the hooks start
without the thirty-odd libraries they pull in.  A library that cannot be loaded
(WALSHIP_TEST_LIBCURL / WALSHIP_TEST_LIBXML2 point elsewhere, tests only) fails
every S3 command with a message naming it and what to install, never "not
found" for walship-fetch, while local repositories do not need them; with them,
a segment goes to S3 and back."""

import pytest

from pgcluster import FIRST_SEGMENT, describe, make_pg_dir, run, sha256_file, write_pg_file

PREFIX = "cluster/a"
MISSING_SEGMENT = "000000010000000000000009"
HINT = "Install libcurl4 and libxml2 (apt-get install libcurl4 libxml2)."
# What libcurl and libxml2 brought in when linked; libpq brings some of them into walship itself.
# (Not libstdc++: sanitizer builds link it.)
HEAVY = ("libicu", "libgnutls", "libkrb5", "libldap")


def linked_libraries(program):
    rc, out, err = run(["ldd", program], user=None)
    assert rc == 0, describe(rc, out, err)
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    assert any(n.startswith("libc.so") for n in names), out  # ldd really listed them
    return names


def s3_config(ws, server):
    return write_pg_file(ws.work / "s3.conf", server.config_text(), 0o600)


def walship_list(ws, url, cfg, env=None):
    return run([ws.walship, f"--config={cfg}", "list", f"--repo={url}"], cwd=ws.work, env=env)


def fetch(ws, url, name, datadir, cfg, tag, env=None):
    target = make_pg_dir(ws.work / tag) / "RECOVERYXLOG"
    rc, out, err = ws.fetch(url, name, target, datadir, "--mode=recovery", config=cfg, env=env)
    return rc, out, err, target


@pytest.mark.parametrize("program", ["walship", "walship-push", "walship-fetch"])
def test_programs_do_not_link_libcurl_or_libxml2(ws, program):
    names = linked_libraries(ws.bindir / program)
    assert not [n for n in names if n.startswith(("libcurl", "libxml2"))], names
    if program != "walship":
        assert not [n for n in names if n.startswith(HEAVY)], names


@pytest.mark.parametrize("variable,value,library,why", [
    ("WALSHIP_TEST_LIBCURL", "/nonexistent/libcurl.so.4", "libcurl", "No such file or directory"),
    ("WALSHIP_TEST_LIBXML2", "/nonexistent/libxml2.so.2", "libxml2", "No such file or directory"),
    # A library that loads but is not libcurl: the missing function is named.
    ("WALSHIP_TEST_LIBCURL", "libxml2.so.2", "libcurl", 'it lacks "curl_global_init"'),
])
def test_s3_without_its_library_fails_clearly(ws, datadir, s3server, s3bucket, variable, value, library, why):
    cfg = s3_config(ws, s3server)
    url = s3server.url(s3bucket, PREFIX)
    ws.init(url, datadir, config=cfg)
    broken = {variable: value}
    message = f'could not load {library} ("{value}")'

    def assert_reported(rc, out, err, code):
        assert rc == code, describe(rc, out, err)
        assert message in err and why in err and HINT in err, describe(rc, out, err)

    rc, out, err = ws.push(url, f"pg_wal/{FIRST_SEGMENT}", FIRST_SEGMENT, datadir, config=cfg, env=broken)
    assert_reported(rc, out, err, 1)
    assert_reported(*walship_list(ws, url, cfg, env=broken), 1)
    # restore_command: 1 would read as "not found" and end recovery early.
    rc, out, err, target = fetch(ws, url, MISSING_SEGMENT, datadir, cfg, "broken", env=broken)
    assert_reported(rc, out, err, 200)
    assert not target.exists()

    # The same commands without the override: the library was the only problem.
    rc, out, err = ws.push(url, f"pg_wal/{FIRST_SEGMENT}", FIRST_SEGMENT, datadir, config=cfg)
    assert rc == 0, describe(rc, out, err)
    rc, out, err = walship_list(ws, url, cfg)
    assert rc == 0, describe(rc, out, err)
    rc, out, err, _ = fetch(ws, url, MISSING_SEGMENT, datadir, cfg, "healthy")
    assert rc == 1, describe(rc, out, err)


def test_local_repository_needs_neither_library(ws, work, datadir):
    url = ws.init(work / "repo", datadir).root
    broken = {"WALSHIP_TEST_LIBCURL": "/nonexistent/libcurl.so.4",
              "WALSHIP_TEST_LIBXML2": "/nonexistent/libxml2.so.2"}
    rc, out, err = ws.push(url, f"pg_wal/{FIRST_SEGMENT}", FIRST_SEGMENT, datadir, env=broken)
    assert rc == 0, describe(rc, out, err)
    rc, out, err, target = fetch(ws, url, FIRST_SEGMENT, datadir, None, "out", env=broken)
    assert rc == 0, describe(rc, out, err)
    assert sha256_file(target) == sha256_file(datadir / "pg_wal" / FIRST_SEGMENT)
    rc, out, err = run([ws.walship, f"--config={ws.config}", "list", f"--repo={url}"], cwd=work, env=broken)
    assert rc == 0 and f"timeline 1: 1 segment, {FIRST_SEGMENT}" in out, describe(rc, out, err)


def test_s3_round_trip_with_the_libraries_loaded(ws, datadir, s3server, s3bucket):
    cfg = s3_config(ws, s3server)
    url = s3server.url(s3bucket, PREFIX)
    ws.init(url, datadir, config=cfg)
    rc, out, err = ws.push(url, f"pg_wal/{FIRST_SEGMENT}", FIRST_SEGMENT, datadir, config=cfg)
    assert rc == 0, describe(rc, out, err)
    rc, out, err, target = fetch(ws, url, FIRST_SEGMENT, datadir, cfg, "out")
    assert rc == 0, describe(rc, out, err)
    assert sha256_file(target) == sha256_file(datadir / "pg_wal" / FIRST_SEGMENT)
    # S3 answers listings in XML: libxml2 reads them.
    rc, out, err = walship_list(ws, url, cfg)
    assert rc == 0 and f"timeline 1: 1 segment, {FIRST_SEGMENT}" in out, describe(rc, out, err)
