"""A damaged repository is never "not found" (issue 12, defect 4).

walship-fetch answers 1 only when it has proven the file missing from a healthy
repository.  A WAL directory that is a dangling symbolic link (a sub-volume not
mounted), a plain file where a WAL directory should be, a directory at an
object's name, and on S3 a 404 that is not S3's own NoSuchKey error (an HTML
page of a misrouting proxy or a wrong endpoint) are damage: 200 in recovery, 1
with the error logged on a standby, never a quiet 1, and neither %p nor a
temporary file is left.  The same shapes on local disk and over SFTP; a
symbolic link to a directory that is there (a volume mounted elsewhere) still
works, and a file missing from it is still "not found".
"""

import os
import shutil
from pathlib import Path

import pytest

from pgcluster import FIRST_SEGMENT, check_run, describe, has_phrase, make_pg_dir, write_pg_file
from test_check import archiving, check
from test_sftp import no_sanitizer_report

SEG = f"pg_wal/{FIRST_SEGMENT}"
MISSING = "000000010000000000000005"
ABORT = 200
HTML_404 = "<html><head><title>404 Not Found</title></head><body><h1>Not Found</h1></body></html>"


@pytest.fixture(params=["local", "sftp"])
def store(request, ws, work, datadir):
    """A repository holding the first segment: (url, config, local path of its root)."""
    root = work / "repo"
    if request.param == "local":
        url, config = root, ws.config
    else:
        sshd = request.getfixturevalue("sshd")
        url = sshd.url(str(root))
        config = write_pg_file(work / "sftp.conf", sshd.config_text(), 0o600)
    ws.init(url, datadir, config=config)
    rc, out, err = ws.push(url, SEG, FIRST_SEGMENT, datadir, config=config)
    assert rc == 0, "setup: pushing a segment failed\n" + describe(rc, out, err)
    return url, config, root


@pytest.fixture
def out_dir(work):
    return make_pg_dir(work / "out", 0o700)


def epoch_dir(root):
    return next(p for p in Path(root).iterdir() if p.is_dir())


def wal_dir(root, name=FIRST_SEGMENT):
    return epoch_dir(root) / "wal" / name[:16]


def fetch(ws, url, config, datadir, out_dir, name, mode):
    target = out_dir / ("RECOVERYHISTORY" if name.endswith(".history") else "RECOVERYXLOG")
    return no_sanitizer_report(ws.fetch(url, name, target, datadir, f"--mode={mode}", config=config))


def assert_damage(result, out_dir, mode, *phrases):
    rc, out, err = result
    want = ABORT if mode == "recovery" else 1
    assert rc == want, f"damage must answer {want} in {mode} mode, never \"not found\"\n" + describe(rc, out, err)
    assert "walship-fetch: error:" in err and has_phrase(err, *phrases), describe(rc, out, err)
    left = sorted(os.listdir(out_dir))
    assert left == [], f"files left where %p was to be written: {left}"


def make_dangling_link(path):
    """path (a directory of the repository) becomes a link to a volume that is not mounted."""
    shutil.rmtree(path)
    os.symlink("/nonexistent/walship-volume", path)


def make_file_at(path):
    shutil.rmtree(path)
    write_pg_file(path, b"not a directory\n", 0o600)


@pytest.mark.parametrize("mode", ["recovery", "standby"])
def test_wal_directory_is_a_dangling_symlink(ws, store, datadir, out_dir, mode):
    url, config, root = store
    make_dangling_link(wal_dir(root))
    for name in (FIRST_SEGMENT, MISSING):
        assert_damage(fetch(ws, url, config, datadir, out_dir, name, mode), out_dir, mode,
                      "symbolic link whose target does not exist")


@pytest.mark.parametrize("mode", ["recovery", "standby"])
def test_a_file_where_the_wal_directory_should_be(ws, store, datadir, out_dir, mode):
    url, config, root = store
    make_file_at(wal_dir(root))
    assert_damage(fetch(ws, url, config, datadir, out_dir, FIRST_SEGMENT, mode), out_dir, mode,
                  "is not a directory")
    # The epoch's wal/ itself: a history file is looked up there.
    make_file_at(epoch_dir(root) / "wal")
    assert_damage(fetch(ws, url, config, datadir, out_dir, "00000002.history", mode), out_dir, mode,
                  "is not a directory")


@pytest.mark.parametrize("mode", ["recovery", "standby"])
def test_a_directory_at_the_objects_name(ws, store, datadir, out_dir, mode):
    url, config, root = store
    obj = wal_dir(root) / FIRST_SEGMENT
    obj.unlink()
    make_pg_dir(obj, 0o750)
    assert_damage(fetch(ws, url, config, datadir, out_dir, FIRST_SEGMENT, mode), out_dir, mode,
                  "is a directory")


def test_wal_directory_linked_to_a_mounted_volume(ws, store, datadir, out_dir, work):
    url, config, root = store
    volume = work / "volume"
    shutil.move(str(wal_dir(root)), str(volume))
    os.symlink(volume, wal_dir(root))
    rc, out, err = fetch(ws, url, config, datadir, out_dir, FIRST_SEGMENT, "recovery")
    assert rc == 0, describe(rc, out, err)
    assert (out_dir / "RECOVERYXLOG").read_bytes() == (datadir / SEG).read_bytes()
    (out_dir / "RECOVERYXLOG").unlink()
    rc, out, err = fetch(ws, url, config, datadir, out_dir, MISSING, "recovery")
    assert rc == 1 and err.strip() == "", "a file missing from a mounted volume is \"not found\"\n" + \
        describe(rc, out, err)


# --------------------------------------------------------------------------
# S3: a 404 that is not S3's


@pytest.fixture
def s3repo(ws, work, datadir, s3server, s3bucket):
    config = write_pg_file(work / "s3.conf", s3server.config_text(), 0o600)
    url = s3server.url(s3bucket, "repo")
    ws.init(url, datadir, config=config)
    rc, out, err = ws.push(url, SEG, FIRST_SEGMENT, datadir, config=config)
    assert rc == 0, "setup: pushing a segment failed\n" + describe(rc, out, err)
    return url, config


@pytest.mark.parametrize("mode", ["recovery", "standby"])
@pytest.mark.parametrize("name", [FIRST_SEGMENT, MISSING])
def test_s3_404_from_something_else_is_not_not_found(ws, s3server, s3repo, datadir, out_dir, mode, name):
    url, config = s3repo
    s3server.add_fault(method="GET", path_regex=f"/{name}$", action="status", status=404, body=HTML_404,
                       count=-1)
    assert_damage(fetch(ws, url, config, datadir, out_dir, name, mode), out_dir, mode, "HTTP 404")
    rc, out, err = fetch(ws, url, config, datadir, out_dir, name, mode)
    assert has_phrase(err, "s3-endpoint"), "the hint names the setting to check\n" + describe(rc, out, err)
    # S3's own answer still means what it says.
    s3server.clear_faults()
    rc, out, err = fetch(ws, url, config, datadir, out_dir, MISSING, mode)
    assert rc == 1 and err.strip() == "", describe(rc, out, err)


def test_s3_check_does_not_take_a_foreign_404_to_head_for_not_found(clusters, ws, work, s3server, s3bucket):
    """A HEAD answer has no body: its 404 is confirmed by a GET, whose answer must be S3's
    NoSuchKey.  walship check's probe for a missing key goes through that path."""
    write_pg_file(ws.config, s3server.config_text(), 0o600)
    url = s3server.url(s3bucket, "cluster-a")

    def s3init(pg):
        check_run([ws.walship, f"--config={ws.config}", "init", f"--repo={url}", f"--pgdata={pg.data}"],
                  cwd=work)
        return url
    pg, _ = archiving(clusters, ws, s3init)
    s3server.add_fault(method="GET", path_regex=r"/wal/check-", action="status", status=404, body=HTML_404,
                       count=-1)
    rc, out, err, _ = check(ws, pg, url)
    assert rc == 3, describe(rc, out, err)
    assert f'failed: repository "{url}" does not answer "not found" for a missing WAL file' in out, out
    heads = [e for e in s3server.log() if e["method"] == "HEAD" and "/wal/check-" in e["path"]]
    gets = [e for e in s3server.log() if e["method"] == "GET" and "/wal/check-" in e["path"]]
    assert heads and gets and gets[0]["fault"] == "status", s3server.log()
