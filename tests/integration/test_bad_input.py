"""walship-push refuses bad input with exit 1 and writes nothing.

Each case checks the exit code, a stable key phrase of the message, and that
the repository tree (dot files included) is byte for byte what it was.
"""

import os

import pytest

from pgcluster import (
    FIRST_SEGMENT,
    describe,
    has_phrase,
    make_pg_dir,
    pg_copy,
    run,
    tree_listing,
    write_pg_file,
)

SEG = f"pg_wal/{FIRST_SEGMENT}"


def assert_nothing_written(repo_root, before, what):
    after = tree_listing(repo_root)
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    assert not (added or removed or changed), (
        f"{what}: the repository changed: added {added}, removed {removed}, changed {changed}"
    )


def assert_usage_hint(err, prog):
    low = err.lower()
    assert "try" in low and f"{prog} --help" in low, f'stderr lacks a "Try \\"{prog} --help\\"" hint:\n{err}'


@pytest.mark.parametrize("args", [[], [SEG], [SEG, FIRST_SEGMENT, "extra"]], ids=["0-args", "1-arg", "3-args"])
def test_push_wrong_argument_count(ws, repo, datadir, args):
    before = tree_listing(repo.root)
    rc, out, err = run([ws.push_bin, f"--config={ws.config}", f"--repo={repo.root}", *args], cwd=datadir)
    assert rc == 1, f"walship-push with {len(args)} argument(s) must exit 1\n" + describe(rc, out, err)
    assert_usage_hint(err, "walship-push")
    assert_nothing_written(repo.root, before, "wrong argument count")


def test_push_unknown_option(ws, repo, datadir):
    before = tree_listing(repo.root)
    rc, out, err = ws.push(repo.root, SEG, FIRST_SEGMENT, datadir, "--no-such-option")
    assert rc == 1, "an unknown option must exit 1\n" + describe(rc, out, err)
    assert_usage_hint(err, "walship-push")
    assert_nothing_written(repo.root, before, "unknown option")


def test_push_bad_compress_level(ws, repo, datadir):
    before = tree_listing(repo.root)
    rc, out, err = ws.push(repo.root, SEG, FIRST_SEGMENT, datadir, "--compress-level=lots")
    assert rc == 1, "a non-numeric --compress-level must exit 1\n" + describe(rc, out, err)
    assert has_phrase(err, "compress-level"), "the message must name the option\n" + describe(rc, out, err)
    assert_nothing_written(repo.root, before, "bad compress level")


def test_walship_init_without_pgdata_is_usage_error(ws, work):
    target = work / "newrepo"
    rc, out, err = run([ws.walship, f"--config={ws.config}", "init", f"--repo={target}"], cwd=work)
    assert rc == 2, "walship init without --pgdata must exit 2\n" + describe(rc, out, err)
    low = err.lower()
    assert "try" in low and "--help" in low, "usage errors must point at --help\n" + describe(rc, out, err)
    assert not target.exists(), "a refused init created the repository"


@pytest.mark.parametrize(
    "name",
    [
        "../x",
        "000000010000000000000001x",
        "",
        "00000001000000000000000g",
        "00000001000000000000000a",  # lowercase hex
        "pg_wal/000000010000000000000001",
        "00000001000000000000001",  # 23 digits
        "000000010000000000000001.partial.x",
        "000000010000000000000001.done",
        "0000000a.history",
        "RECOVERYXLOG",
    ],
)
def test_push_refuses_non_wal_names(ws, repo, datadir, name):
    before = tree_listing(repo.root)
    rc, out, err = ws.push(repo.root, SEG, name, datadir)
    assert rc == 1, f"walship-push must refuse %f = {name!r} with exit 1\n" + describe(rc, out, err)
    assert has_phrase(err, "is not a WAL file name"), describe(rc, out, err)
    assert_nothing_written(repo.root, before, f"name {name!r}")


def test_push_swapped_arguments_get_a_hint(ws, repo, datadir):
    """archive_command = 'walship-push %f %p': the error says the order is wrong and which it is."""
    before = tree_listing(repo.root)
    rc, out, err = ws.push(repo.root, FIRST_SEGMENT, SEG, datadir)
    assert rc == 1, "walship-push %f %p must exit 1 (a usage error)\n" + describe(rc, out, err)
    assert has_phrase(err, "is not a WAL file name"), describe(rc, out, err)
    assert "hint: The arguments look swapped: archive_command takes %p %f (walship-push %p %f)." in err, describe(
        rc, out, err
    )
    assert_nothing_written(repo.root, before, "swapped arguments")


def test_push_plain_bad_name_gets_no_swap_hint(ws, repo, datadir):
    rc, out, err = ws.push(repo.root, SEG, "pg_wal/000000010000000000000001", datadir)
    assert rc == 1, describe(rc, out, err)
    assert "swapped" not in err, "a path given twice is not a swap\n" + describe(rc, out, err)


@pytest.mark.parametrize("path", ["pg_wal/RECOVERYXLOG", "/tmp/restore-target/000000010000000000000001"])
def test_fetch_swapped_arguments_get_a_hint(ws, repo, datadir, path):
    """restore_command = 'walship-fetch %p %f': exit 200 (usage error), the hint, nothing written."""
    listing = sorted(os.listdir(datadir)) + sorted(os.listdir(datadir / "pg_wal"))
    before = tree_listing(repo.root)
    rc, out, err = ws.fetch(repo.root, path, FIRST_SEGMENT, datadir, "--mode=recovery")
    assert rc == 200, "walship-fetch %p %f is a usage error: exit 200\n" + describe(rc, out, err)
    assert "hint: The arguments look swapped: restore_command takes %f %p (walship-fetch %f %p)." in err, describe(
        rc, out, err
    )
    assert sorted(os.listdir(datadir)) + sorted(os.listdir(datadir / "pg_wal")) == listing, "fetch wrote a file"
    assert not os.path.exists(path), "fetch wrote a file"
    assert_nothing_written(repo.root, before, "swapped fetch arguments")


def test_push_refuses_timeline_zero(ws, repo, datadir):
    before = tree_listing(repo.root)
    rc, out, err = ws.push(repo.root, SEG, "000000000000000000000001", datadir)
    assert rc == 1, "timeline 0 must be refused\n" + describe(rc, out, err)
    assert_nothing_written(repo.root, before, "timeline 0")


def test_push_truncated_segment(ws, repo, datadir, work):
    short = pg_copy(datadir / SEG, work / FIRST_SEGMENT, length=1024 * 1024)
    before = tree_listing(repo.root)
    rc, out, err = ws.push(repo.root, short, FIRST_SEGMENT, datadir)
    assert rc == 1, "a truncated segment must be refused with exit 1\n" + describe(rc, out, err)
    assert has_phrase(err, "size", "1048576", "16777216"), \
        "the message must mention the size\n" + describe(rc, out, err)
    assert_nothing_written(repo.root, before, "truncated segment")


def test_push_segment_of_another_cluster(ws, repo, datadir, foreign_datadir, work):
    alien = pg_copy(foreign_datadir / SEG, work / FIRST_SEGMENT)
    before = tree_listing(repo.root)
    rc, out, err = ws.push(repo.root, alien, FIRST_SEGMENT, datadir)
    assert rc == 1, "a segment of another cluster must be refused with exit 1\n" + describe(rc, out, err)
    assert has_phrase(err, "another cluster", "system identifier"), describe(rc, out, err)
    assert_nothing_written(repo.root, before, "foreign segment")


def test_push_segment_under_wrong_name(ws, repo, datadir, work):
    # A real segment 1 pushed as segment 2: its page address does not match.
    name = "000000010000000000000002"
    moved = pg_copy(datadir / SEG, work / name)
    before = tree_listing(repo.root)
    rc, out, err = ws.push(repo.root, moved, name, datadir)
    assert rc == 1, "a segment whose page address does not match its name must be refused\n" + describe(rc, out, err)
    assert_nothing_written(repo.root, before, "segment under the wrong name")


def test_push_from_outside_a_data_directory(ws, repo, datadir, work):
    before = tree_listing(repo.root)
    rc, out, err = ws.push(repo.root, datadir / SEG, FIRST_SEGMENT, work)
    assert rc == 1, "a push from a directory without global/pg_control must fail\n" + describe(rc, out, err)
    assert_nothing_written(repo.root, before, "no pg_control")


def test_push_history_from_another_cluster_data_directory(ws, repo, foreign_datadir, work):
    # .history files carry no system identifier: pg_control of the current
    # directory must match the repository.
    hist = write_pg_file(work / "00000002.history", b"1\t0/3000000\tno recovery target specified\n")
    before = tree_listing(repo.root)
    rc, out, err = ws.push(repo.root, hist, "00000002.history", foreign_datadir)
    assert rc == 1, "a push from another cluster's data directory must fail\n" + describe(rc, out, err)
    assert has_phrase(err, "another cluster", "system identifier"), describe(rc, out, err)
    assert_nothing_written(repo.root, before, "history from another cluster")


def test_push_missing_repository(ws, datadir, work):
    missing = work / "no-such-repo"
    rc, out, err = ws.push(missing, SEG, FIRST_SEGMENT, datadir)
    assert rc == 1, "a missing repository must fail with exit 1\n" + describe(rc, out, err)
    assert has_phrase(err, "does not exist"), describe(rc, out, err)
    assert not missing.exists(), "walship-push created the missing repository"


def test_push_unreadable_repository(ws, repo, datadir):
    os.chown(repo.root, 0, 0)
    os.chmod(repo.root, 0)
    try:
        before = tree_listing(repo.root)
        rc, out, err = ws.push(repo.root, SEG, FIRST_SEGMENT, datadir)
        assert rc == 1, "an unreadable repository must fail with exit 1\n" + describe(rc, out, err)
        assert err.strip(), "the failure must be explained on stderr"
        assert_nothing_written(repo.root, before, "unreadable repository")
    finally:
        os.chmod(repo.root, 0o700)


def test_push_uninitialised_repository(ws, datadir, work):
    empty = make_pg_dir(work / "empty-repo")
    rc, out, err = ws.push(empty, SEG, FIRST_SEGMENT, datadir)
    assert rc == 1, "an uninitialised repository must fail with exit 1\n" + describe(rc, out, err)
    assert has_phrase(err, "not initialised", "not initialized", "walship init"), describe(rc, out, err)
    assert os.listdir(empty) == [], f"walship-push wrote into an uninitialised repository: {os.listdir(empty)}"


def test_push_config_unknown_key(ws, repo, datadir, work):
    cfg = write_pg_file(work / "bad.conf", b"# test\nno-such-key = 1\n", 0o600)
    before = tree_listing(repo.root)
    rc, out, err = ws.push(repo.root, SEG, FIRST_SEGMENT, datadir, config=cfg)
    assert rc == 1, "an unknown configuration key must fail with exit 1\n" + describe(rc, out, err)
    assert has_phrase(err, "unrecognized configuration key"), describe(rc, out, err)
    assert_nothing_written(repo.root, before, "unknown config key")


def test_push_config_missing_named_file(ws, repo, datadir, work):
    before = tree_listing(repo.root)
    rc, out, err = ws.push(repo.root, SEG, FIRST_SEGMENT, datadir, config=work / "missing.conf")
    assert rc == 1, "a named configuration file that is missing must fail\n" + describe(rc, out, err)
    assert_nothing_written(repo.root, before, "missing config file")


@pytest.mark.parametrize("mode", [0o666, 0o620])
def test_push_config_writable_by_others(ws, repo, datadir, work, mode):
    cfg = write_pg_file(work / "loose.conf", f"repo = {repo.root}\n".encode(), mode)
    before = tree_listing(repo.root)
    rc, out, err = ws.push(repo.root, SEG, FIRST_SEGMENT, datadir, config=cfg)
    assert rc == 1, f"a config file with mode {mode:o} must be refused with exit 1\n" + describe(rc, out, err)
    assert has_phrase(err, "writable"), describe(rc, out, err)
    assert_nothing_written(repo.root, before, "loose config permissions")


def test_push_repo_from_config_file(ws, repo, datadir, work):
    # The positive control of the cases above: a good config file naming the
    # repository works without --repo.
    cfg = write_pg_file(work / "good.conf", f"# walship\nrepo = {repo.root}\n".encode(), 0o600)
    rc, out, err = ws.push(None, SEG, FIRST_SEGMENT, datadir, config=cfg)
    assert rc == 0, describe(rc, out, err)
    assert repo.key_path(FIRST_SEGMENT).is_file()
