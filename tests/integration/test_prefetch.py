"""walship-fetch's prefetching (fetch-ahead, spool-path): a rebuild from S3
with 50 ms added latency reaches exactly the same rows with prefetching on and
off, and on reads segments from the spool; a timeline switch inside the
replayed WAL is followed; pg_rewind -c works and never starts a prefetcher; a
spooled file with a flipped byte is not served (on a spool on another file
system, so the copy path is used); "not found" is never remembered; several
segments are fetched at once, each worker on its own connection; and no
prefetcher is left running, nor a spool left behind, once recovery ends."""

import hashlib
import os
import re
import subprocess
import time
from pathlib import Path

from pgcluster import (
    PG_BIN,
    check_run,
    chown_pg,
    describe,
    flip_byte,
    free_port,
    make_pg_dir,
    popen,
    program_path,
    run,
    sha256_file,
    wait_for,
    write_pg_file,
)
from test_backup import archiving_cluster, backup
from test_rebuild import rebuild, rows, stop_server
from test_stores import PREFIX, Remote, init

SERVED = "from the prefetch spool"


def set_config(ws, *lines):
    write_pg_file(ws.config, "".join(line + "\n" for line in lines).encode(), 0o600)


def make_spool(tmp):
    return make_pg_dir(tmp / "spool", 0o700)


def prefetchers(ws):
    """Processes running the session's walship-fetch (the prefetcher keeps the command line of the call that
    started it)."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmd and cmd[0] == str(ws.fetch_bin).encode():
            found.append((int(d.name), b" ".join(cmd).decode(errors="replace")))
    return found


def spool_dirs(spool):
    """The per-data-directory spools under spool-path (logs are files beside them)."""
    return sorted(p for p in spool.glob("*/fetch/*") if p.is_dir())


def datadir_hash(pgdata):
    """The part of a spool's name that comes from the data directory's real path."""
    return hashlib.sha256(os.path.realpath(pgdata).encode()).hexdigest()[:16]


def recovering_datadir(pg, tmp, signal):
    """A data directory as a recovering server has it, for calling walship-fetch by hand: pg's
    PG_VERSION and pg_control, an empty pg_wal and the signal file (no server runs in it)."""
    dd = make_pg_dir(tmp / "dd", 0o700)
    for rel in ("PG_VERSION", "global/pg_control"):
        make_pg_dir((dd / rel).parent, 0o700)
        write_pg_file(dd / rel, (pg.data / rel).read_bytes())
    make_pg_dir(dd / "pg_wal", 0o700)
    write_pg_file(dd / signal, b"")
    return dd


def wait_no_prefetcher(ws, spool, timeout=30):
    wait_for(lambda: not prefetchers(ws), timeout, lambda: f"prefetcher still running: {prefetchers(ws)}")
    wait_for(lambda: not spool_dirs(spool), timeout, lambda: f"spool left behind: {spool_dirs(spool)}")


def table_state(sockdir, port):
    return rows(sockdir, port, "SELECT (SELECT count(*) FROM pgbench_history), (SELECT sum(abalance) FROM "
                               "pgbench_accounts), (SELECT array_agg(id ORDER BY id) FROM marker)")[0]


def test_rebuild_from_s3_with_latency_prefetch_on_and_off(ws, work, clusters, tmp, s3server, s3bucket):
    spool = make_spool(tmp)
    rem = Remote("s3", s3server.url(s3bucket, PREFIX), s3server, bucket=s3bucket)
    base = s3server.config_text(s3bucket, PREFIX).strip().splitlines()
    set_config(ws, *base)
    pg = clusters.new("primary").initdb()
    init(ws, rem, pg.data)
    pg.configure(archive_mode=True, archive_command=ws.archive_command(rem.root))
    pg.start()
    pg.sql("CREATE TABLE marker (id int PRIMARY KEY)")
    pg.pgbench("-i", "-s", "1", "-q")
    rc, out, err = backup(ws, rem.root, pg)
    assert rc == 0, describe(rc, out, err)
    # About a dozen segments to replay, some nearly empty, some full.
    for i in range(6):
        pg.pgbench("-c", "2", "-j", "2", "-t", "300")
        pg.sql("INSERT INTO marker VALUES (%s)", (i,))
        pg.switch_wal()
    pg.sql("CHECKPOINT")
    last = pg.switch_wal()
    pg.wait_archived(last, timeout=180)
    want = table_state(pg.dir, pg.port)

    s3server.add_fault(action="delay", delay_ms=50, count=-1)
    results = {}
    for ahead in (8, 0):
        set_config(ws, *base, f"spool-path = {spool}", f"fetch-ahead = {ahead}", "log-level = info")
        dest = make_pg_dir(tmp / f"rebuilt-{ahead}", 0o700)
        port = free_port()
        try:
            t0 = time.monotonic()
            rc, out, err = rebuild(ws, rem, dest, "--start", f"--port={port}", timeout=300)
            elapsed = time.monotonic() - t0
            assert rc == 0 and "server was promoted" in out, f"fetch-ahead {ahead}: " + describe(rc, out, err)
            log = (dest / "walship-rebuild.log").read_text(errors="replace")
            results[ahead] = (table_state(pg.dir, port), log.count(SERVED), elapsed)
            wait_no_prefetcher(ws, spool)
        finally:
            stop_server(dest)
    print("prefetch results (state, served, seconds):", results)
    assert results[8][0] == want, f"prefetch on: {results[8][0]}, primary {want}"
    assert results[0][0] == want, f"prefetch off: {results[0][0]}, primary {want}"
    assert results[8][1] >= 5, f"prefetch on served only {results[8][1]} segments from the spool"
    assert results[0][1] == 0, "fetch-ahead = 0 still served from the spool"
    assert not prefetchers(ws)


def promoted_copy(ws, pg, clusters, repo):
    """A streaming copy of pg, promoted to timeline 2 once pg stops, archiving into the same repository."""
    copy = clusters.new("copy").basebackup_from(pg, extra=("-X", "stream", "-R"))
    copy.configure(archive_mode=True, archive_command=ws.archive_command(repo.root), hot_standby=True,
                   wal_log_hints=True)
    copy.touch("standby.signal")
    copy.start()
    lsn = pg.scalar("SELECT pg_current_wal_lsn()::text")
    wait_for(lambda: copy.scalar(f"SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn"), 60,
             "the copy did not catch up")
    return copy


def test_timeline_switch_followed_with_prefetch(ws, work, clusters, tmp):
    spool = make_spool(tmp)
    set_config(ws, f"spool-path = {spool}", "fetch-ahead = 8", "log-level = info")
    pg, repo = archiving_cluster(ws, work, clusters)
    pg.sql("CREATE TABLE marker (id int PRIMARY KEY)")
    pg.pgbench("-i", "-s", "1", "-q")
    rc, out, err = backup(ws, repo.root, pg)
    assert rc == 0, describe(rc, out, err)
    for i in range(3):
        pg.sql("INSERT INTO marker VALUES (%s)", (i,))
        pg.switch_wal()
    pg.wait_archived(pg.switch_wal())
    copy = promoted_copy(ws, pg, clusters, repo)
    pg.stop()
    copy.promote()
    wait_for(lambda: copy.scalar("SELECT NOT pg_is_in_recovery()"), 60, "the copy was not promoted")
    for i in range(10, 14):
        copy.pgbench("-c", "1", "-t", "200")
        copy.sql("INSERT INTO marker VALUES (%s)", (i,))
        copy.switch_wal()
    copy.wait_archived(copy.switch_wal())
    assert (repo.root / repo.epoch / "wal" / "00000002.history").exists()
    want = table_state(copy.dir, copy.port)

    dest = make_pg_dir(tmp / "rebuilt", 0o700)
    port = free_port()
    try:
        rc, out, err = rebuild(ws, repo, dest, "--target-timeline=latest", "--start", f"--port={port}")
        assert rc == 0 and "server was promoted" in out, describe(rc, out, err)
        got = table_state(pg.dir, port)
        assert got == want, f"rebuilt {got}, timeline 2 holds {want}"
        assert rows(pg.dir, port, "SELECT timeline_id FROM pg_control_checkpoint()")[0][0] == 3
        log = (dest / "walship-rebuild.log").read_text(errors="replace")
        served = re.findall(r'restored "([0-9A-F]{24})".*' + SERVED, log)
        assert any(n.startswith("00000001") for n in served), f"no timeline 1 segment from the spool: {served}"
        assert any(n.startswith("00000002") for n in served), f"no timeline 2 segment from the spool: {served}"
        assert "prefetched copy" not in log and "walship-fetch: error" not in log, log
        wait_no_prefetcher(ws, spool)
    finally:
        stop_server(dest)


def test_pg_rewind_with_restore_command_never_prefetches(ws, work, clusters, tmp):
    spool = make_spool(tmp)
    set_config(ws, f"spool-path = {spool}", "fetch-ahead = 8", "log-level = info")
    pg, repo = archiving_cluster(ws, work, clusters, wal_log_hints=True)
    pg.configure(restore_command=ws.restore_command(repo.root))
    pg.sql("CREATE TABLE marker (id int PRIMARY KEY)")
    copy = promoted_copy(ws, pg, clusters, repo)
    copy.promote()
    wait_for(lambda: copy.scalar("SELECT NOT pg_is_in_recovery()"), 60, "the copy was not promoted")
    copy.sql("INSERT INTO marker VALUES (2)")
    # The old primary goes on alone: diverged.  Its segments go to the repository, then leave pg_wal,
    # so pg_rewind must read them through restore_command.
    pg.sql("INSERT INTO marker VALUES (1)")
    for _ in range(3):
        pg.switch_wal()
    pg.wait_archived(pg.switch_wal())
    pg.stop()
    archived = [p.name[:24] for p in (pg.data / "pg_wal" / "archive_status").glob("*.done")]
    assert archived, "nothing archived is left in pg_wal"
    for name in archived:
        (pg.data / "pg_wal" / name).unlink(missing_ok=True)

    src = f"host={copy.dir} port={copy.port} user=postgres dbname=postgres"
    # -R: primary_conninfo for the new primary in postgresql.auto.conf, as an operator does it.  pg_rewind
    # copies the source's postgresql.auto.conf, and the copy's names its old primary: this server (seen on 13,
    # where it then tried to stream from itself until the test gave up).
    rc, out, err = run([PG_BIN / "pg_rewind", "-D", pg.data, f"--source-server={src}", "-c", "-R"], cwd=pg.dir,
                       timeout=180)
    assert rc == 0, describe(rc, out, err)
    assert re.search(r"walship-fetch: \w+: restored", err), f"pg_rewind did not use walship-fetch:\n{err}"
    assert SERVED not in err
    assert not prefetchers(ws), prefetchers(ws)
    # (The copy, a standby with the same restore_command, may have prefetched: not the rewound directory.)
    mine = [p for p in spool.glob("*/fetch/*") if datadir_hash(pg.data) in p.name]
    assert not mine, mine
    assert not list((pg.data / "pg_wal").glob(".*walship*")), list((pg.data / "pg_wal").iterdir())
    # The rewound server follows the new primary (pg_rewind copied the copy's postgresql.conf: ours again).
    pg._base_settings()
    pg.configure(primary_conninfo=src, restore_command=ws.restore_command(repo.root))
    pg.touch("standby.signal")
    pg.start()
    wait_for(lambda: pg.sql("SELECT id FROM marker ORDER BY id") == [(2,)], 60,
             lambda: f"rewound server has {pg.sql('SELECT id FROM marker')}")
    pg.stop()
    wait_no_prefetcher(ws, spool)


def test_damaged_spool_file_is_fetched_afresh_and_not_found_never_cached(ws, work, clusters, tmp):
    # The spool on its own tmpfs: claiming a spooled file crosses file systems (the copy path).
    spool = make_spool(tmp)
    check_run(["mount", "-t", "tmpfs", "-o", "size=300m,mode=0700", "tmpfs", str(spool)], user=None)
    chown_pg(spool)
    sleeper = None
    try:
        set_config(ws, f"spool-path = {spool}", "fetch-ahead = 4", "log-level = info")
        pg, repo = archiving_cluster(ws, work, clusters, wal_keep_size="1GB")
        names = [pg.switch_wal() for _ in range(5)]
        pg.wait_archived(names[-1])
        # A data directory "in recovery" whose postmaster is a process that stays alive.
        dd = recovering_datadir(pg, tmp, "recovery.signal")
        sleeper = popen(["sleep", "600"])
        write_pg_file(dd / "postmaster.pid", f"{sleeper.pid}\n{dd}\n".encode())
        target = dd / "pg_wal" / "RECOVERYXLOG"

        def fetch(name):
            return ws.fetch(repo.root, name, target, dd, "--mode=recovery")

        rc, out, err = fetch(names[0])
        assert rc == 0 and SERVED not in err, describe(rc, out, err)
        assert sha256_file(target) == sha256_file(pg.data / "pg_wal" / names[0])
        target.unlink()
        assert len(prefetchers(ws)) == 1, prefetchers(ws)

        def spooled():
            return sorted(p.name for d in spool_dirs(spool) for p in d.iterdir() if p.name[:1] in "0")

        wait_for(lambda: len(spooled()) == 4, 60, lambda: f"spool holds {spooled()}")
        assert [n[:24] for n in spooled()] == names[1:5]
        damaged = next(d / n for d in spool_dirs(spool) for n in spooled() if n.startswith(names[1]))
        flip_byte(damaged, 8192 + 100)

        rc, out, err = fetch(names[1])
        assert rc == 0 and "is damaged" in err and SERVED not in err, describe(rc, out, err)
        assert sha256_file(target) == sha256_file(pg.data / "pg_wal" / names[1]), "a damaged copy was served"
        target.unlink()
        rc, out, err = fetch(names[2])
        assert rc == 0 and SERVED in err, describe(rc, out, err)
        assert sha256_file(target) == sha256_file(pg.data / "pg_wal" / names[2])
        target.unlink()

        # Past the end: not found, then archived: found (nothing remembered the first answer).
        rc, out, err = fetch(names[4])
        assert rc == 0, describe(rc, out, err)
        target.unlink()
        nxt = f"{names[4][:16]}{int(names[4][16:], 16) + 1:08X}"
        rc, out, err = fetch(nxt)
        assert rc == 1 and not target.exists(), describe(rc, out, err)
        pg.wait_archived(pg.switch_wal())
        rc, out, err = fetch(nxt)
        assert rc == 0, describe(rc, out, err)
        assert sha256_file(target) == sha256_file(pg.data / "pg_wal" / nxt)
        assert not list((dd / "pg_wal").glob(".*")), list((dd / "pg_wal").iterdir())

        # Recovery ends: the prefetcher goes, taking its spool with it.
        (dd / "recovery.signal").unlink()
        wait_no_prefetcher(ws, spool, timeout=15)
    finally:
        if sleeper is not None:
            sleeper.kill()
            sleeper.wait()
        subprocess.run(["umount", str(spool)], check=False)
    assert not prefetchers(ws)


def test_prefetcher_leaves_when_the_postmaster_is_gone(ws, work, clusters, tmp):
    spool = make_spool(tmp)
    set_config(ws, f"spool-path = {spool}", "fetch-ahead = 2")
    pg, repo = archiving_cluster(ws, work, clusters)
    names = [pg.switch_wal() for _ in range(2)]
    pg.wait_archived(names[-1])
    dd = recovering_datadir(pg, tmp, "standby.signal")
    sleeper = popen(["sleep", "600"])
    try:
        write_pg_file(dd / "postmaster.pid", f"{sleeper.pid}\n{dd}\n".encode())
        rc, out, err = ws.fetch(repo.root, names[0], dd / "pg_wal" / "RECOVERYXLOG", dd)
        assert rc == 0, describe(rc, out, err)
        wait_for(lambda: prefetchers(ws), 10, "no prefetcher started")
        # Its descriptors: /dev/null, its log, the lock, and what it opened itself in the repository
        # and the spool;
        # nothing inherited from the caller (a pipe there would keep a syslogger alive).
        pid = prefetchers(ws)[0][0]
        links = {int(f.name): program_path(os.readlink(f)) for f in Path(f"/proc/{pid}/fd").iterdir()}
        assert links[0] == links[1] == "/dev/null" and links[2].endswith(".log"), links
        assert links[3].endswith("/lock"), links
        # (A segment being written into the spool is its own too.)
        others = [v for k, v in links.items()
                  if k > 3 and not v.startswith(str(repo.root)) and not v.startswith(str(spool))]
        assert not others, links
        # Same process group as the call's parent (no setsid): the postmaster's signals reach it.
        assert os.getpgid(pid) != pid
    finally:
        sleeper.kill()
        sleeper.wait()
    wait_no_prefetcher(ws, spool, timeout=15)


def index_files(spool):
    """The prefetchers' indexes: where a call finds a spool without opening the repository."""
    return sorted(p.name for p in (spool / "by-repo").glob("*") if not p.name.startswith("."))


def test_spooled_segment_served_while_s3_is_down(ws, work, clusters, tmp, s3server, s3bucket):
    # Serving a spooled, verified segment needs no repository; "not found" still does.
    spool = make_spool(tmp)
    rem = Remote("s3", s3server.url(s3bucket, PREFIX), s3server, bucket=s3bucket)
    base = s3server.config_text(s3bucket, PREFIX).strip().splitlines()
    set_config(ws, *base, f"spool-path = {spool}", "fetch-ahead = 2", "log-level = info", "io-timeout = 5")
    pg = clusters.new("primary").initdb()
    init(ws, rem, pg.data)
    pg.configure(archive_mode=True, archive_command=ws.archive_command(rem.root), wal_keep_size="1GB")
    pg.start()
    names = [pg.switch_wal() for _ in range(4)]
    pg.wait_archived(names[-1], timeout=120)
    dd = recovering_datadir(pg, tmp, "recovery.signal")
    sleeper = popen(["sleep", "600"])
    target = dd / "pg_wal" / "RECOVERYXLOG"

    def fetch(name, *opts):
        return ws.fetch(rem.root, name, target, dd, "--mode=recovery", *opts)

    def spooled():
        return sorted(p.name[:24] for d in spool_dirs(spool) for p in d.iterdir() if p.name[:1] == "0")

    try:
        write_pg_file(dd / "postmaster.pid", f"{sleeper.pid}\n{dd}\n".encode())
        rc, out, err = fetch(names[0])
        assert rc == 0 and SERVED not in err, describe(rc, out, err)
        target.unlink()
        wait_for(lambda: spooled() == names[1:3] and index_files(spool), 60,
                 lambda: f"spool holds {spooled()}, indexes {index_files(spool)}")
        [index] = index_files(spool)
        assert index.endswith(datadir_hash(dd)), index
        pids = [p for p, _ in prefetchers(ws)]
        assert len(pids) == 1, prefetchers(ws)

        s3server.kill()
        try:
            assert not s3server.alive()
            rc, out, err = fetch(names[1])
            assert rc == 0 and SERVED in err, describe(rc, out, err)
            assert sha256_file(target) == sha256_file(pg.data / "pg_wal" / names[1])
            target.unlink()
            # The served call told the prefetcher, which is still the same process.
            req = next(d / "request" for d in spool_dirs(spool))
            assert req.read_text().split()[0] == names[1]
            assert [p for p, _ in prefetchers(ws)] == pids, prefetchers(ws)
            # With --epoch naming another epoch, the index does not apply: the repository is needed.
            rc, out, err = fetch(names[2], "--epoch=nosuch-1")
            assert rc == 200 and not target.exists(), describe(rc, out, err)
            # Not spooled, and past the end of the archive: the store is down, so never "not found".
            nxt = f"{names[3][:16]}{int(names[3][16:], 16) + 1:08X}"
            for name in (names[3], nxt):
                rc, out, err = fetch(name)
                assert rc == 200 and not target.exists(), f"{name}: " + describe(rc, out, err)
            # (A standby retries instead: errors answer 1 there, by design.)
            assert not list((dd / "pg_wal").glob(".*")), list((dd / "pg_wal").iterdir())
        finally:
            s3server.restart()

        # Back up: the spooled segment is still served, the rest is fetched, the end is "not found".
        rc, out, err = fetch(names[2])
        assert rc == 0 and SERVED in err, describe(rc, out, err)
        assert sha256_file(target) == sha256_file(pg.data / "pg_wal" / names[2])
        target.unlink()
        rc, out, err = fetch(names[3])
        assert rc == 0, describe(rc, out, err)
        assert sha256_file(target) == sha256_file(pg.data / "pg_wal" / names[3])
        target.unlink()
        rc, out, err = fetch(nxt)
        assert rc == 1 and not target.exists(), describe(rc, out, err)

        # Recovery ends: the prefetcher goes, taking its index and spool with it.
        (dd / "recovery.signal").unlink()
        wait_no_prefetcher(ws, spool, timeout=15)
        assert not index_files(spool), index_files(spool)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert not prefetchers(ws)


def test_index_of_another_cluster_is_not_followed(ws, work, clusters, tmp):
    # An index naming another system identifier (a copied spool, a re-initialised cluster at the same
    # path) is ignored: the call opens the repository, which answers for this cluster.
    spool = make_spool(tmp)
    set_config(ws, f"spool-path = {spool}", "fetch-ahead = 2", "log-level = debug")
    pg, repo = archiving_cluster(ws, work, clusters, wal_keep_size="1GB")
    names = [pg.switch_wal() for _ in range(3)]
    pg.wait_archived(names[-1])
    dd = recovering_datadir(pg, tmp, "standby.signal")
    sleeper = popen(["sleep", "600"])
    target = dd / "pg_wal" / "RECOVERYXLOG"
    try:
        write_pg_file(dd / "postmaster.pid", f"{sleeper.pid}\n{dd}\n".encode())
        rc, out, err = ws.fetch(repo.root, names[0], target, dd)
        assert rc == 0, describe(rc, out, err)
        target.unlink()
        wait_for(lambda: index_files(spool) and any(
            p.name.startswith(names[1]) for d in spool_dirs(spool) for p in d.iterdir()), 60, "nothing spooled")
        [index] = index_files(spool)
        ipath = spool / "by-repo" / index
        words = ipath.read_text().split()
        words[3] = str(int(words[3]) + 1)
        write_pg_file(ipath, (" ".join(words) + "\n").encode(), 0o600)
        rc, out, err = ws.fetch(repo.root, names[1], target, dd)
        assert rc == 0, describe(rc, out, err)
        assert "is for epoch" in err, err
        assert sha256_file(target) == sha256_file(pg.data / "pg_wal" / names[1])
        target.unlink()
        (dd / "standby.signal").unlink()
        wait_no_prefetcher(ws, spool, timeout=15)
    finally:
        sleeper.kill()
        sleeper.wait()


def fetch_events(log):
    """The prefetcher's debug lines about segments, in order: ("start" | "end", segment name)."""
    events = []
    for m in re.finditer(r'(prefetching|prefetched) "([0-9A-F]{24})"', log):
        events.append(("start" if m.group(1) == "prefetching" else "end", m.group(2)))
    return events


def overlapping_fetches(events):
    """Most fetches seen in flight at once: counted only between a start and that segment's own successful
    end, so a fetch that failed (no end) never inflates it.  Fetching one at a time gives 1."""
    ends = {}
    for i, (kind, name) in enumerate(events):
        if kind == "end":
            ends.setdefault(name, []).append(i)
    spans = []
    for i, (kind, name) in enumerate(events):
        if kind == "start":
            later = [j for j in ends.get(name, []) if j > i]
            if later:
                spans.append((i, later[0]))
    return max((sum(1 for a, b in spans if a <= i < b) for i in range(len(events))), default=0)


def test_segments_are_fetched_several_at_once(ws, work, clusters, tmp, s3server, s3bucket):
    # Every segment GET held 400 ms by the S3 proxy: one at a time, each fetch would end before the next
    # starts.  The prefetcher's workers must have several in flight, each on its own connection.
    spool = make_spool(tmp)
    rem = Remote("s3", s3server.url(s3bucket, PREFIX), s3server, bucket=s3bucket)
    base = s3server.config_text(s3bucket, PREFIX).strip().splitlines()
    set_config(ws, *base, f"spool-path = {spool}", "fetch-ahead = 4", "log-level = debug")
    pg = clusters.new("primary").initdb()
    init(ws, rem, pg.data)
    pg.configure(archive_mode=True, archive_command=ws.archive_command(rem.root), wal_keep_size="1GB")
    pg.start()
    names = [pg.switch_wal() for _ in range(5)]
    pg.wait_archived(names[-1], timeout=120)
    dd = recovering_datadir(pg, tmp, "recovery.signal")
    sleeper = popen(["sleep", "600"])
    target = dd / "pg_wal" / "RECOVERYXLOG"

    def spooled():
        return sorted(p.name[:24] for d in spool_dirs(spool) for p in d.iterdir() if p.name[:1] == "0")

    try:
        write_pg_file(dd / "postmaster.pid", f"{sleeper.pid}\n{dd}\n".encode())
        s3server.clear_log()
        s3server.add_fault(action="delay", delay_ms=400, method="GET", path_regex=r"/wal/[0-9A-F]{16}/",
                           count=-1)
        rc, out, err = ws.fetch(rem.root, names[0], target, dd, "--mode=recovery")
        assert rc == 0 and SERVED not in err, describe(rc, out, err)
        target.unlink()
        wait_for(lambda: spooled() == names[1:5], 60, lambda: f"spool holds {spooled()}")
        [logfile] = list(spool.glob("*/fetch/*.log"))
        log = logfile.read_text(errors="replace")
        events = fetch_events(log)
        assert sorted(n for k, n in events if k == "end") == names[1:5], log
        in_flight = overlapping_fetches(events)
        print("segments in flight at once:", in_flight, events)
        assert in_flight >= 2, f"the prefetcher fetched one segment at a time:\n{log}"
        assert "warning" not in log.lower(), log

        # The proxy saw the same: the prefetched segments came over several connections.
        gets = [e for e in s3server.log() if e["method"] == "GET" and any(n in e["path"] for n in names[1:5])]
        assert gets and all(e["status"] in (200, 206) for e in gets), gets
        conns = {e["conn"] for e in gets}
        assert len(conns) >= 2, f"every prefetched segment on one connection: {gets}"
        s3server.clear_faults()

        # Served from the spool as before.
        for name in names[1:3]:
            rc, out, err = ws.fetch(rem.root, name, target, dd, "--mode=recovery")
            assert rc == 0 and SERVED in err, describe(rc, out, err)
            assert sha256_file(target) == sha256_file(pg.data / "pg_wal" / name)
            target.unlink()

        # Recovery ends: every worker is joined and the spool goes.
        (dd / "recovery.signal").unlink()
        wait_no_prefetcher(ws, spool, timeout=15)
    finally:
        s3server.clear_faults()
        sleeper.kill()
        sleeper.wait()
    assert not prefetchers(ws)
