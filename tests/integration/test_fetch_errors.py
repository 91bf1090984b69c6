"""walship-fetch's exit codes: 0 written whole, 1 only for a file a healthy
repository lacks (quietly), 200 for every other error in recovery, 1 with the
error logged on a standby, and 200 for frontend tools (pg_rewind) always.

After a failure %p must not exist and nothing may be left beside it.
"""

import os
import shutil

import pytest

from pgcluster import (
    FIRST_SEGMENT,
    describe,
    flip_byte,
    has_phrase,
    make_pg_dir,
    run,
    write_pg_file,
)

SEG = f"pg_wal/{FIRST_SEGMENT}"
ABORT = 200


@pytest.fixture
def stocked(ws, repo, datadir):
    """The repository holding the data directory's first segment."""
    r = ws.push(repo.root, SEG, FIRST_SEGMENT, datadir)
    assert r[0] == 0, "setup: pushing a segment failed\n" + describe(*r)
    return repo


@pytest.fixture
def out_dir(work):
    """Where %p goes; must stay empty after every failure."""
    return make_pg_dir(work / "out", 0o700)


def assert_no_output(out_dir, what):
    left = sorted(os.listdir(out_dir))
    assert left == [], f"{what}: files left where %p was to be written: {left}"


def corrupt_object(repo, name=FIRST_SEGMENT):
    obj = repo.key_path(name)
    flip_byte(obj, obj.stat().st_size // 2)
    return obj


# -- success and not found ---------------------------------------------------


def test_fetch_success_writes_the_segment(ws, stocked, datadir, out_dir):
    target = out_dir / "RECOVERYXLOG"
    rc, out, err = ws.fetch(stocked.root, FIRST_SEGMENT, target, datadir, "--mode=recovery")
    assert rc == 0, describe(rc, out, err)
    assert target.read_bytes() == (datadir / SEG).read_bytes(), "fetched segment differs from the original"
    assert sorted(os.listdir(out_dir)) == ["RECOVERYXLOG"], f"extra files beside %p: {os.listdir(out_dir)}"


@pytest.mark.parametrize("mode", ["recovery", "standby", "auto"])
@pytest.mark.parametrize("name", ["000000010000000000000005", "00000002.history",
                                  "000000010000000000000005.partial"])
def test_fetch_missing_file_is_quiet_not_found(ws, stocked, datadir, out_dir, mode, name):
    target = out_dir / ("RECOVERYHISTORY" if name.endswith(".history") else "RECOVERYXLOG")
    rc, out, err = ws.fetch(stocked.root, name, target, datadir, f"--mode={mode}")
    assert rc == 1, f"a file the repository lacks must answer 1 (mode {mode})\n" + describe(rc, out, err)
    assert err.strip() == "", "not found must be quiet at the default log level\n" + describe(rc, out, err)
    assert_no_output(out_dir, "not found")


def test_fetch_missing_file_in_empty_but_initialised_repository(ws, repo, datadir, out_dir):
    # No wal/ directory at all yet: still a healthy repository.
    rc, out, err = ws.fetch(repo.root, FIRST_SEGMENT, out_dir / "RECOVERYXLOG", datadir, "--mode=recovery")
    assert rc == 1, describe(rc, out, err)
    assert err.strip() == "", describe(rc, out, err)
    assert_no_output(out_dir, "empty repository")


# -- a damaged or foreign repository -------------------------------------------


@pytest.mark.parametrize("mode,expected", [("recovery", ABORT), ("standby", 1)])
def test_fetch_corrupted_object(ws, stocked, datadir, out_dir, mode, expected):
    corrupt_object(stocked)
    rc, out, err = ws.fetch(stocked.root, FIRST_SEGMENT, out_dir / "RECOVERYXLOG", datadir, f"--mode={mode}")
    assert rc == expected, f"a corrupted object must answer {expected} in {mode} mode\n" + describe(rc, out, err)
    assert has_phrase(err, "error"), "the corruption must be logged\n" + describe(rc, out, err)
    assert_no_output(out_dir, f"corrupted object ({mode})")


@pytest.mark.parametrize("mode,expected", [("recovery", ABORT), ("standby", 1)])
def test_fetch_truncated_object(ws, stocked, datadir, out_dir, mode, expected):
    obj = stocked.key_path(FIRST_SEGMENT)
    with open(obj, "r+b") as f:
        f.truncate(obj.stat().st_size - 30)
    rc, out, err = ws.fetch(stocked.root, FIRST_SEGMENT, out_dir / "RECOVERYXLOG", datadir, f"--mode={mode}")
    assert rc == expected, f"a truncated object must answer {expected} in {mode} mode\n" + describe(rc, out, err)
    assert_no_output(out_dir, f"truncated object ({mode})")


@pytest.mark.parametrize("mode,expected", [("recovery", ABORT), ("standby", 1)])
def test_fetch_without_walship_json(ws, stocked, datadir, out_dir, mode, expected):
    # An unmounted volume: the directory is there, the repository is not.
    (stocked.root / "walship.json").unlink()
    for name in (FIRST_SEGMENT, "000000010000000000000007"):
        rc, out, err = ws.fetch(stocked.root, name, out_dir / "RECOVERYXLOG", datadir, f"--mode={mode}")
        assert rc == expected, (f"{name} from a repository without walship.json must answer {expected} "
                                f"in {mode} mode\n" + describe(rc, out, err))
        assert has_phrase(err, "not initialised", "not initialized", "walship init", "walship.json"), \
            describe(rc, out, err)
        assert_no_output(out_dir, f"no walship.json ({mode})")


@pytest.mark.parametrize("mode,expected", [("recovery", ABORT), ("standby", 1)])
@pytest.mark.parametrize("how", ["cwd", "pgdata-option"])
def test_fetch_from_another_clusters_repository(ws, work, datadir, foreign_datadir, out_dir, mode, expected, how):
    other = ws.init(work / "other-repo", foreign_datadir)
    r = ws.push(other.root, SEG, FIRST_SEGMENT, foreign_datadir)
    assert r[0] == 0, describe(*r)
    if how == "cwd":
        cwd, opts = datadir, []
    else:
        cwd, opts = work, [f"--pgdata={datadir}"]
    for name in (FIRST_SEGMENT, "000000010000000000000007"):
        rc, out, err = ws.fetch(other.root, name, out_dir / "RECOVERYXLOG", cwd, f"--mode={mode}", *opts)
        assert rc == expected, (f"fetching {name} from another cluster's repository must answer {expected} "
                                f"in {mode} mode\n" + describe(rc, out, err))
        assert err.strip(), "the mismatch must be explained on stderr"
        assert_no_output(out_dir, f"another cluster ({mode})")


@pytest.mark.parametrize("mode,expected", [("recovery", ABORT), ("standby", 1)])
def test_fetch_with_epoch_from_another_clusters_repository(ws, work, datadir, foreign_datadir, out_dir, mode,
                                                           expected):
    """rebuild writes --epoch=15-1 into restore_command, and every PostgreSQL 15
    repository's first epoch is called 15-1: a wrong volume mounted at the path
    must neither answer "not found" nor hand over the other cluster's files."""
    other = ws.init(work / "other-repo", foreign_datadir)
    hist = write_pg_file(work / "00000002.history", b"1\t0/3000000\tno recovery target specified\n")
    for path, name in ((SEG, FIRST_SEGMENT), (hist, "00000002.history")):
        r = ws.push(other.root, path, name, foreign_datadir)
        assert r[0] == 0, "setup: pushing into the other cluster's repository failed\n" + describe(*r)
    for name in (FIRST_SEGMENT, "000000010000000000000007", "00000002.history", "00000003.history"):
        target = out_dir / ("RECOVERYHISTORY" if name.endswith(".history") else "RECOVERYXLOG")
        rc, out, err = ws.fetch(other.root, name, target, datadir, f"--mode={mode}", "--epoch=15-1")
        assert rc == expected, (f"fetching {name} with --epoch=15-1 from another cluster's repository must "
                                f"answer {expected} in {mode} mode\n" + describe(rc, out, err))
        assert has_phrase(err, "belongs to another cluster"), describe(rc, out, err)
        assert_no_output(out_dir, f"another cluster's epoch 15-1 ({mode}, {name})")


@pytest.mark.parametrize("mode,expected", [("recovery", ABORT), ("standby", 1)])
def test_fetch_out_of_memory(ws, stocked, datadir, out_dir, fail_alloc, mode, expected):
    """Out of memory is an error like any other, never "not found" (it exited 1
    in every mode): and the temporary file beside %p goes with it."""
    rc, out, err = ws.fetch(stocked.root, FIRST_SEGMENT, out_dir / "RECOVERYXLOG", datadir, f"--mode={mode}",
                            env=fail_alloc(256 * 1024))
    assert rc == expected, f"out of memory must answer {expected} in {mode} mode\n" + describe(rc, out, err)
    assert "walship-fetch: error: out of memory" in err, describe(rc, out, err)
    assert_no_output(out_dir, f"out of memory ({mode})")


def test_push_out_of_memory(ws, repo, datadir, fail_alloc):
    rc, out, err = ws.push(repo.root, SEG, FIRST_SEGMENT, datadir, env=fail_alloc(256 * 1024))
    assert rc == 1, "out of memory must fail the push with 1\n" + describe(rc, out, err)
    assert "walship-push: error: out of memory" in err, describe(rc, out, err)
    assert not repo.key_path(FIRST_SEGMENT).exists(), "nothing may be stored by a push that failed"


def test_fetch_missing_repository(ws, datadir, work, out_dir):
    rc, out, err = ws.fetch(work / "no-such-repo", FIRST_SEGMENT, out_dir / "RECOVERYXLOG", datadir, "--mode=recovery")
    assert rc == ABORT, "a missing repository must abort recovery\n" + describe(rc, out, err)
    assert has_phrase(err, "does not exist"), describe(rc, out, err)
    assert not (work / "no-such-repo").exists()
    assert_no_output(out_dir, "missing repository")


def test_fetch_unreadable_repository(ws, stocked, datadir, out_dir):
    os.chown(stocked.root, 0, 0)
    os.chmod(stocked.root, 0)
    try:
        rc, out, err = ws.fetch(stocked.root, FIRST_SEGMENT, out_dir / "RECOVERYXLOG", datadir, "--mode=recovery")
        assert rc == ABORT, "an unreadable repository must abort recovery\n" + describe(rc, out, err)
        rc, out, err = ws.fetch(stocked.root, "000000010000000000000009", out_dir / "RECOVERYXLOG", datadir,
                                "--mode=recovery")
        assert rc == ABORT, "an unreadable repository is no proof of 'not found'\n" + describe(rc, out, err)
    finally:
        os.chmod(stocked.root, 0o700)
    assert_no_output(out_dir, "unreadable repository")


def test_fetch_uninitialised_repository(ws, datadir, work, out_dir):
    empty = make_pg_dir(work / "empty-repo")
    rc, out, err = ws.fetch(empty, FIRST_SEGMENT, out_dir / "RECOVERYXLOG", datadir, "--mode=recovery")
    assert rc == ABORT, "an uninitialised repository must abort recovery\n" + describe(rc, out, err)
    assert has_phrase(err, "not initialised", "not initialized", "walship init"), describe(rc, out, err)
    assert os.listdir(empty) == []
    assert_no_output(out_dir, "uninitialised repository")


def test_fetch_unreadable_object(ws, stocked, datadir, out_dir):
    obj = stocked.key_path(FIRST_SEGMENT)
    os.chown(obj, 0, 0)
    os.chmod(obj, 0)
    rc, out, err = ws.fetch(stocked.root, FIRST_SEGMENT, out_dir / "RECOVERYXLOG", datadir, "--mode=recovery")
    assert rc == ABORT, "an object that cannot be read is not 'not found'\n" + describe(rc, out, err)
    assert_no_output(out_dir, "unreadable object")


def test_fetch_config_writable_by_others(ws, stocked, datadir, work, out_dir):
    cfg = write_pg_file(work / "loose.conf", b"", 0o666)
    rc, out, err = ws.fetch(stocked.root, FIRST_SEGMENT, out_dir / "RECOVERYXLOG", datadir, "--mode=recovery",
                            config=cfg)
    assert rc == ABORT, "a loose config file must abort recovery\n" + describe(rc, out, err)
    assert has_phrase(err, "writable"), describe(rc, out, err)
    assert_no_output(out_dir, "loose config")


def test_fetch_config_unknown_key(ws, stocked, datadir, work, out_dir):
    cfg = write_pg_file(work / "bad.conf", b"no-such-key = 1\n", 0o600)
    rc, out, err = ws.fetch(stocked.root, FIRST_SEGMENT, out_dir / "RECOVERYXLOG", datadir, "--mode=recovery",
                            config=cfg)
    assert rc == ABORT, "a bad config file must abort recovery\n" + describe(rc, out, err)
    assert has_phrase(err, "unrecognized configuration key"), describe(rc, out, err)
    assert_no_output(out_dir, "bad config")


@pytest.mark.parametrize("content, mode_opt, signal_file", [
    (b"no-such-key = 1\n", "--mode=standby", None),
    (b"log-level = loud\n", "--mode=standby", None),
    (b"no-such-key = 1\n", None, "standby.signal"),
])
def test_fetch_config_error_on_a_standby_answers_1(ws, stocked, datadir, work, out_dir, content, mode_opt,
                                                   signal_file):
    """A broken configuration is an error like any other: a standby answers 1
    (exit 200 would make its startup process FATAL and shut the server down)."""
    cfg = write_pg_file(work / "bad.conf", content, 0o600)
    if signal_file:
        write_pg_file(datadir / signal_file, b"")
    opts = [mode_opt] if mode_opt else []
    rc, out, err = ws.fetch(stocked.root, FIRST_SEGMENT, out_dir / "RECOVERYXLOG", datadir, *opts, config=cfg)
    assert rc == 1, "a configuration error on a standby must answer 1\n" + describe(rc, out, err)
    assert has_phrase(err, "error"), "the error must still be logged on a standby\n" + describe(rc, out, err)
    assert_no_output(out_dir, "bad config on a standby")


@pytest.mark.parametrize("mode, expected", [("--mode=recovery", ABORT), ("--mode=standby", 1)])
def test_fetch_refuses_an_object_stored_under_another_segments_name(ws, stocked, datadir, out_dir, mode, expected):
    """A whole, valid object moved to another segment's key decompresses
    cleanly: only the page header's address tells it is not that segment."""
    other = FIRST_SEGMENT[:-1] + "2"
    dst = stocked.key_path(other)
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(stocked.key_path(FIRST_SEGMENT), dst)
    rc, out, err = ws.fetch(stocked.root, other, out_dir / "RECOVERYXLOG", datadir, mode)
    assert rc == expected, f"an object under another segment's name must not be restored ({mode})\n" + \
        describe(rc, out, err)
    assert has_phrase(err, "page address"), describe(rc, out, err)
    assert has_phrase(err, other), "the message must name the WAL file\n" + describe(rc, out, err)
    assert_no_output(out_dir, "object under another name")


@pytest.mark.parametrize("standby, expected", [(False, ABORT), (True, 1)])
def test_fetch_without_pg_version_and_bad_config(ws, stocked, datadir, work, out_dir, standby, expected):
    """Nothing readable in the data directory and a broken configuration: still
    a clean answer (no crash), and a standby.signal still makes it a standby."""
    (datadir / "PG_VERSION").unlink()
    if standby:
        write_pg_file(datadir / "standby.signal", b"")
    cfg = write_pg_file(work / "bad.conf", b"no-such-key = 1\n", 0o600)
    for config in (cfg, None):
        rc, out, err = ws.fetch(stocked.root, FIRST_SEGMENT, out_dir / "RECOVERYXLOG", datadir, config=config)
        assert rc == expected, describe(rc, out, err)
        assert err.strip(), "the error must be logged\n" + describe(rc, out, err)
        assert_no_output(out_dir, "no PG_VERSION")


# -- auto mode: standby, recovery, frontend -------------------------------------


def test_auto_mode_standby_signal_answers_1_on_error(ws, stocked, datadir, out_dir):
    write_pg_file(datadir / "standby.signal", b"")
    corrupt_object(stocked)
    rc, out, err = ws.fetch(stocked.root, FIRST_SEGMENT, out_dir / "RECOVERYXLOG", datadir)
    assert rc == 1, "auto mode with standby.signal must answer 1 on an error\n" + describe(rc, out, err)
    assert err.strip(), "the error must still be logged on a standby"
    assert_no_output(out_dir, "auto/standby")


def test_auto_mode_recovery_signal_aborts_on_error(ws, stocked, datadir, out_dir):
    write_pg_file(datadir / "recovery.signal", b"")
    corrupt_object(stocked)
    rc, out, err = ws.fetch(stocked.root, FIRST_SEGMENT, out_dir / "RECOVERYXLOG", datadir)
    assert rc == ABORT, "auto mode without standby.signal must abort on an error\n" + describe(rc, out, err)
    assert_no_output(out_dir, "auto/recovery")


def test_auto_mode_standby_wins_over_recovery_signal(ws, stocked, datadir, out_dir):
    write_pg_file(datadir / "recovery.signal", b"")
    write_pg_file(datadir / "standby.signal", b"")
    corrupt_object(stocked)
    rc, out, err = ws.fetch(stocked.root, FIRST_SEGMENT, out_dir / "RECOVERYXLOG", datadir)
    assert rc == 1, "standby.signal wins over recovery.signal\n" + describe(rc, out, err)


def rewind_target(datadir, work):
    """The data directory pg_rewind works on: the same cluster, with the
    segment to fetch absent from its pg_wal.  pg_rewind -c runs
    restore_command from its own working directory with
    %p = <target>/pg_wal/<name>."""
    target = make_pg_dir(work / "target")
    make_pg_dir(target / "global")
    for rel in ("PG_VERSION", "global/pg_control"):
        shutil.copyfile(datadir / rel, target / rel)
    write_pg_file(target / "standby.signal", b"")
    return target, make_pg_dir(target / "pg_wal")


@pytest.mark.parametrize("mode_opts", [[], ["--mode=standby"]], ids=["auto", "standby"])
def test_frontend_tool_errors_abort_even_on_standby(ws, stocked, datadir, work, mode_opts):
    write_pg_file(datadir / "standby.signal", b"")
    target, target_wal = rewind_target(datadir, work)
    corrupt_object(stocked)
    rc, out, err = ws.fetch(stocked.root, FIRST_SEGMENT, target_wal / FIRST_SEGMENT, work, *mode_opts)
    assert rc == ABORT, "a frontend tool's fetch must answer 200 on an error, even on a standby\n" + \
        describe(rc, out, err)
    assert_no_output(target_wal, "frontend tool")


def test_frontend_tool_success_and_not_found(ws, stocked, datadir, work):
    target, target_wal = rewind_target(datadir, work)
    dest = target_wal / FIRST_SEGMENT
    rc, out, err = ws.fetch(stocked.root, FIRST_SEGMENT, dest, work)
    assert rc == 0, describe(rc, out, err)
    assert dest.read_bytes() == (datadir / SEG).read_bytes()
    missing = "000000010000000000000004"
    rc, out, err = ws.fetch(stocked.root, missing, target_wal / missing, work)
    assert rc == 1, "not found is still 1 for a frontend tool\n" + describe(rc, out, err)
    assert err.strip() == "", describe(rc, out, err)
    assert not (target_wal / missing).exists()
    assert sorted(os.listdir(target_wal)) == [FIRST_SEGMENT], f"extra files: {os.listdir(target_wal)}"


def test_frontend_tool_for_another_cluster_aborts(ws, stocked, foreign_datadir, work):
    # pg_rewind on a data directory of another cluster must not be told "not found".
    target, target_wal = rewind_target(foreign_datadir, work)
    rc, out, err = ws.fetch(stocked.root, "000000010000000000000004", target_wal / "000000010000000000000004", work)
    assert rc == ABORT, describe(rc, out, err)
    assert_no_output(target_wal, "frontend tool, another cluster")


# -- usage errors ----------------------------------------------------------------


@pytest.mark.parametrize("args", [[], [FIRST_SEGMENT], [FIRST_SEGMENT, "OUT", "extra"]],
                         ids=["0-args", "1-arg", "3-args"])
def test_fetch_wrong_argument_count(ws, stocked, datadir, out_dir, args):
    args = [str(out_dir / "RECOVERYXLOG") if a == "OUT" else a for a in args]
    rc, out, err = run([ws.fetch_bin, f"--config={ws.config}", f"--repo={stocked.root}", "--mode=recovery", *args],
                       cwd=datadir)
    assert rc == ABORT, "usage errors must answer 200, never 1 or 2\n" + describe(rc, out, err)
    low = err.lower()
    assert "try" in low and "walship-fetch --help" in low, describe(rc, out, err)
    assert_no_output(out_dir, "wrong argument count")


@pytest.mark.parametrize("opts", [["--no-such-option"], ["--mode=sometimes"]], ids=["unknown-option", "bad-mode"])
def test_fetch_bad_options(ws, stocked, datadir, out_dir, opts):
    rc, out, err = ws.fetch(stocked.root, FIRST_SEGMENT, out_dir / "RECOVERYXLOG", datadir, *opts)
    assert rc == ABORT, "usage errors must answer 200\n" + describe(rc, out, err)
    assert_no_output(out_dir, "bad option")


@pytest.mark.parametrize("name", ["../x", "000000010000000000000001x", "", "00000001000000000000000g",
                                  "00000001000000000000000a", "../15-1/wal/0000000100000000/000000010000000000000001"])
def test_fetch_refuses_non_wal_names(ws, stocked, datadir, out_dir, name):
    rc, out, err = ws.fetch(stocked.root, name, out_dir / "RECOVERYXLOG", datadir, "--mode=recovery")
    assert rc == ABORT, f"%f = {name!r} must answer 200\n" + describe(rc, out, err)
    assert has_phrase(err, "is not a WAL file name"), describe(rc, out, err)
    assert_no_output(out_dir, f"name {name!r}")


def test_fetch_into_missing_directory(ws, stocked, datadir, work):
    rc, out, err = ws.fetch(stocked.root, FIRST_SEGMENT, work / "no-such-dir" / "RECOVERYXLOG", datadir,
                            "--mode=recovery")
    assert rc == ABORT, "a %p that cannot be written must abort\n" + describe(rc, out, err)
    assert not (work / "no-such-dir").exists()


def test_fetch_replaces_stale_target(ws, stocked, datadir, out_dir):
    # PostgreSQL may leave an old RECOVERYXLOG behind; fetch replaces it whole.
    target = write_pg_file(out_dir / "RECOVERYXLOG", b"stale")
    rc, out, err = ws.fetch(stocked.root, FIRST_SEGMENT, target, datadir, "--mode=recovery")
    assert rc == 0, describe(rc, out, err)
    assert target.read_bytes() == (datadir / SEG).read_bytes()
