"""Recovery from walship's archive alone: a base backup without WAL recovered
through walship-fetch, and a standby fed only by restore_command that follows
its primary and is then promoted (and archives its new timeline)."""

from pgcluster import describe, sha256_file, wait_for, zstd_decompress, zstd_sha256

CHECKS = [
    "SELECT count(*), sum(abalance), sum(bid) FROM pgbench_accounts",
    "SELECT count(*), sum(delta) FROM pgbench_history",
    "SELECT count(*), sum(bbalance) FROM pgbench_branches",
    "SELECT count(*), md5(string_agg(id::text || ':' || v, ',' ORDER BY id)) FROM known",
]


def snapshot(cluster):
    return [tuple(cluster.sql(q)[0]) for q in CHECKS]


def archiving_primary(ws, work, clusters):
    pg = clusters.new("primary").initdb()
    repo = ws.init(work / "repo", pg.data)
    pg.configure(archive_mode=True, archive_command=ws.archive_command(repo.root))
    pg.start()
    pg.sql("CREATE TABLE known (id int PRIMARY KEY, v text NOT NULL)")
    return pg, repo


def assert_quiet_fetches(cluster):
    log = cluster.log_text()
    assert "walship-fetch: error" not in log, f"walship-fetch logged errors during recovery:\n{cluster.log_tail()}"


def test_point_in_time_recovery_from_archive_only(ws, work, clusters):
    pg, repo = archiving_primary(ws, work, clusters)
    pg.pgbench("-i", "-s", "2", "-q")
    pg.pgbench("-c", "2", "-j", "2", "-T", "3")

    # -X none: the copy holds no WAL; recovery must fetch all of it.
    copy = clusters.new("copy").basebackup_from(pg, extra=("-X", "none"))

    pg.sql("INSERT INTO known SELECT g, md5(g::text) FROM generate_series(1, 1000) g")
    pg.pgbench("-c", "2", "-j", "2", "-T", "4")
    pg.sql("UPDATE known SET v = 'changed' WHERE id % 7 = 0")
    expected = snapshot(pg)
    last = pg.switch_wal()
    pg.wait_archived(last)
    pg.stop()

    copy.configure(restore_command=ws.restore_command(repo.root), archive_mode=False)
    copy.touch("recovery.signal")
    copy.start(timeout=180)
    wait_for(lambda: copy.scalar("SELECT pg_is_in_recovery()") is False, 180,
             lambda: f"recovery did not end\nserver log:\n{copy.log_tail()}")

    got = snapshot(copy)
    assert got == expected, f"recovered data differs:\n primary {expected}\n copy    {got}\nlog:\n{copy.log_tail()}"
    assert copy.scalar("SELECT count(*) FROM known WHERE v = 'changed'") == 1000 // 7
    log = copy.log_text()
    assert "restored log file" in log, f"no segment was restored from the archive:\n{copy.log_tail()}"
    assert_quiet_fetches(copy)
    assert copy.scalar("SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)") == "00000002", \
        "recovery should end on a new timeline"


def test_standby_fed_by_restore_command_then_promoted(ws, work, clusters):
    pg, repo = archiving_primary(ws, work, clusters)
    pg.pgbench("-i", "-s", "1", "-q")

    sb = clusters.new("standby").basebackup_from(pg, extra=("-X", "none"))
    # No primary_conninfo: the archive is the only source.  The standby
    # archives too, which only starts once it is promoted.
    sb.configure(
        restore_command=ws.restore_command(repo.root),
        archive_mode=True,
        archive_command=ws.archive_command(repo.root),
        wal_retrieve_retry_interval="500ms",
        hot_standby=True,
    )
    sb.touch("standby.signal")
    sb.start(timeout=180)
    assert sb.scalar("SELECT pg_is_in_recovery()") is True

    expected = None
    for rnd in range(2):
        lo = rnd * 500 + 1
        pg.sql("INSERT INTO known SELECT g, md5(g::text) FROM generate_series(%s::int, %s::int) g", (lo, lo + 499))
        pg.pgbench("-c", "2", "-j", "2", "-t", "200")
        expected = snapshot(pg)
        last = pg.switch_wal()
        pg.wait_archived(last)
        wait_for(lambda: snapshot(sb) == expected, 90,
                 lambda: f"round {rnd + 1}: the standby did not catch up: primary {expected}, "
                         f"standby {snapshot(sb)}\nstandby log:\n{sb.log_tail()}",
                 interval=0.5)

    sb.promote()
    assert sb.scalar("SELECT pg_is_in_recovery()") is False
    assert snapshot(sb) == expected, "the promoted standby lost data"
    assert sb.scalar("SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)") == "00000002"
    sb.sql("INSERT INTO known VALUES (-1, 'written after promotion')")
    last = sb.switch_wal()
    sb.wait_archived(last)
    assert_quiet_fetches(sb)

    # The promoted server archived its timeline history file and segments.
    hist = repo.key_path("00000002.history")
    assert hist.is_file(), f"no 00000002.history in the repository: {repo.files()}"
    assert zstd_decompress(hist) == (sb.data / "pg_wal" / "00000002.history").read_bytes()
    status = sb.data / "pg_wal" / "archive_status"
    objects = repo.objects()
    for done in sorted(status.glob("*.done")):
        name = done.name[: -len(".done")]
        local = sb.data / "pg_wal" / name
        assert name in objects, f"{name} is marked archived but not in the repository: {sorted(objects)}"
        if local.exists():
            assert zstd_sha256(objects[name]) == sha256_file(local), f"stored {name} differs from pg_wal's"

    # The old primary, still running, goes on archiving timeline 1 into the
    # same repository beside the new timeline.
    pg.sql("INSERT INTO known VALUES (-2, 'old primary')")
    last = pg.switch_wal()
    pg.wait_archived(last)
    rc, out, err = ws.fetch(repo.root, "00000002.history", work / "RECOVERYHISTORY", sb.data, "--mode=recovery")
    assert rc == 0, describe(rc, out, err)
