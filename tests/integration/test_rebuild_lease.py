"""walship rebuild's lease against walship prune, with real PostgreSQL 15: a
rebuild keeps the backup and the WAL its recovery needs from prune until
recovery has read it, and prune says so, one line per lease.

- Local disk: a rebuild waits for a running prune before it reads the
  repository; a rebuild killed while it waits leaves a lease that holds
  everything until it expires (test-only short expiry), and prune then removes
  it; a rebuild without --start leaves a lease that keeps its (older) backup and
  WAL through a prune, and the copy started afterwards has the primary's rows;
  a new rebuild of the same directory replaces the lease; an expired lease holds
  nothing back and prune removes it.
- Encrypted S3: prune runs while a rebuild --start is still fetching WAL (each
  segment GET held by the S3 proxy), keeps what recovery needs, and the copy
  reaches the primary's rows; the lease is released once recovery has ended."""

import json
import re
import signal
import socket
import time
from pathlib import Path

from pgcluster import (
    PG_BIN,
    check_run,
    describe,
    free_port,
    make_pg_dir,
    popen,
    wait_for,
    write_pg_file,
)
from test_prune import prune, rows_at, seg_no, take_backup, wal_segments, walship_cmd
from test_rebuild import rebuild, rows, stop_server
from test_stores import PREFIX, Remote, archiving_primary

# Rows of the primary at each step; WAL switched in between so that a prune keeping only the
# newer backup would remove the older one's WAL.
SWITCHES = 5


def fill(pg, take):
    """Rows, backup B1, rows and WAL switches, backup B2, rows; B1, B2 and the final rows."""
    pg.sql("CREATE TABLE ev (src text, id int, PRIMARY KEY (src, id))")
    pg.sql("INSERT INTO ev SELECT 'p', g FROM generate_series(1, 10) g")
    pg.switch_wal()
    b1 = take()
    for i in range(SWITCHES):
        pg.sql(f"INSERT INTO ev SELECT 'p', g FROM generate_series({100 + 10 * i}, {109 + 10 * i}) g")
        pg.switch_wal()
    b2 = take()
    pg.sql("INSERT INTO ev SELECT 'p', g FROM generate_series(1000, 1010) g")
    last = pg.switch_wal()
    pg.wait_archived(last)
    return b1, b2, rows_at(pg.dir, pg.port)


def rebuild_bg(ws, repo_url, pgdata, *opts, env=None, log=None):
    """walship rebuild in the background, as root (as the tests run rebuild), output to files."""
    out = open(log.with_suffix(".out"), "w")
    err = open(log.with_suffix(".err"), "w")
    cmd = [ws.walship, f"--config={ws.config}", "rebuild", f"--repo={repo_url}", f"--pgdata={pgdata}", *opts]
    return popen(cmd, cwd=ws.work, user=None, env=env, stdout=out, stderr=err)


def text(path):
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def live_prune_lock(root):
    """walship.lock of a prune running on another machine (its heartbeat ahead: never stale here)."""
    now = int(time.time())
    lock = {"purpose": "prune", "host": "elsewhere.example", "pid": 4242, "token": "f" * 32, "started": now,
            "started_at": "2026-11-25T12:00:00Z", "heartbeat": now + 3600, "heartbeat_at": ""}
    write_pg_file(Path(root) / "walship.lock", json.dumps(lock).encode(), 0o640)


def leases(root):
    return sorted(p.name for p in (Path(root) / "leases").glob("*.json"))


def start_copy(dest, sockdir, port):
    """Start a data directory rebuilt without --start, as an operator would later, and wait for the
    end of recovery (no target: it promotes)."""
    check_run([PG_BIN / "pg_ctl", "-D", dest, "-l", dest / "later.log", "-o", f"-p {port}", "-w", "-t", "120",
               "start"], timeout=180)
    wait_for(lambda: rows(sockdir, port, "SELECT pg_is_in_recovery()") == [(False,)], 120,
             lambda: f"the copy did not finish recovery:\n{text(dest / 'later.log')[-3000:]}")


def wal_files(root, epoch, segs):
    """Names of the WAL objects (segments and .backup files) of the segments segs {(tli, segno)}."""
    return {p.name for p in (Path(root) / epoch / "wal").glob("*/*")
            if re.fullmatch(r"[0-9A-F]{24}(\.[0-9A-F]{8}\.backup)?", p.name)
            and (int(p.name[:8], 16), seg_no(p.name[:24])) in segs}


def test_lease_keeps_what_a_rebuilt_copy_needs_until_it_expires(ws, work, clusters, tmp):
    from test_backup import archiving_cluster

    pg, repo = archiving_cluster(ws, work, clusters)
    b1, b2, want = fill(pg, lambda: take_backup(ws, repo.root, pg))
    epoch = repo.epoch
    m1 = json.loads((repo.root / epoch / "backups" / b1 / "manifest.json").read_text())
    m2 = json.loads((repo.root / epoch / "backups" / b2 / "manifest.json").read_text())
    b1_wal = {(1, n) for n in range(seg_no(m1["start_wal"]), seg_no(m2["start_wal"]))}
    assert len(b1_wal) >= SWITCHES and b1_wal <= wal_segments(repo.root, epoch)
    b1_files = wal_files(repo.root, epoch, b1_wal)  # with B1's .backup file
    host = socket.gethostname()

    # A rebuild killed while it waits for a prune: its lease holds everything, then expires.
    live_prune_lock(repo.root)
    killed = make_pg_dir(tmp / "killed", 0o700)
    short = {"WALSHIP_TEST_LOCK_EXPIRY": "2"}
    proc = rebuild_bg(ws, repo.root, killed, env=short, log=tmp / "killed")
    try:
        wait_for(lambda: "waiting for walship prune on elsewhere.example (pid 4242" in text(tmp / "killed.err"),
                 60, lambda: text(tmp / "killed.err"))
        assert len(leases(repo.root)) == 1
        rc, out, err = prune(ws, repo.root, "--keep-backups=1", "--dry-run", "--json")
        assert rc == 0, describe(rc, out, err)
        [held] = json.loads(out)["leases"]
        assert held["holds_everything"] and not held["expired"] and held["pgdata"] == str(killed), held
        assert json.loads(out)["backups_removed"] == [] and json.loads(out)["wal_removed"] == 0, out
        rc, out, err = prune(ws, repo.root, "--keep-backups=1", "--dry-run")
        assert rc == 0 and f'data directory "{killed}"' in out and \
            "its rebuild had not chosen a backup yet: kept every backup and all WAL, " in out, describe(rc, out, err)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    killed_lease = leases(repo.root)[0][:-len(".json")]
    time.sleep(3)

    # A rebuild of B1 without --start waits for the prune, then leaves its lease for the later start.
    dest = make_pg_dir(tmp / "copy", 0o700)
    proc = rebuild_bg(ws, repo.root, dest, f"--backup={b1}", log=tmp / "copy")
    wait_for(lambda: "waiting for walship prune" in text(tmp / "copy.err"), 60, lambda: text(tmp / "copy.err"))
    time.sleep(1.5)
    assert proc.poll() is None and not (dest / "global").exists(), "rebuild did not wait for the prune"
    (repo.root / "walship.lock").unlink()
    assert proc.wait(timeout=180) == 0, text(tmp / "copy.out") + text(tmp / "copy.err")
    out = text(tmp / "copy.out")
    lease_line = [line for line in out.splitlines() if line.startswith("lease ")]
    assert lease_line and f'keeps backup "{b1}" and its WAL from walship prune until' in lease_line[0], out
    copy_lease = lease_line[0].split()[1]
    assert sorted(leases(repo.root)) == sorted([f"{killed_lease}.json", f"{copy_lease}.json"])

    rc, out, err = walship_cmd(ws, repo.root, "list")
    assert rc == 0 and f"lease {copy_lease}: walship rebuild on {host}" in out, describe(rc, out, err)
    assert f"backup {b1} of epoch {epoch}, timeline 1, WAL from {m1['start_wal']} on" in out, out
    assert f"lease {killed_lease}: " in out and "expired: it holds nothing" in out, out

    # Prune keeping one backup: B1 and its WAL stay for the copy; the dead rebuild's lease goes.
    rc, out, err = prune(ws, repo.root, "--keep-backups=1", "--dry-run", "--json")
    assert rc == 0, describe(rc, out, err)
    dry = json.loads(out)
    segs_before = wal_segments(repo.root, epoch)
    rc, out, err = prune(ws, repo.root, "--keep-backups=1")
    assert rc == 0, describe(rc, out, err)
    print(f"prune beside the lease:\n{out}")
    assert (repo.root / epoch / "backups" / b1 / "manifest.json").is_file(), "prune removed the leased backup"
    missing = b1_wal - wal_segments(repo.root, epoch)
    assert not missing, f"prune removed WAL the rebuilt copy needs: {sorted(missing)}\n{out}"
    assert f"lease {copy_lease} (walship rebuild on {host} (pid " in out, out
    assert f'data directory "{dest}"' in out and f'kept backup "{b1}" of epoch "{epoch}", which retention would ' \
        f"remove, and the WAL from {m1['start_wal']} on along timeline 1 ({len(b1_files)} WAL files" in out, out
    assert f"removed expired lease {killed_lease} (walship rebuild on {host}" in out, out
    assert "kept 2 backups" in out, out
    assert leases(repo.root) == [f"{copy_lease}.json"]
    [dry_copy] = [x for x in dry["leases"] if x["id"] == copy_lease]
    assert dry_copy["backup"] == b1 and dry_copy["backup_kept_by_lease"] and \
        dry_copy["wal_kept_by_lease"] == len(b1_files), dry
    # Only what lies before B1 goes.
    before_b1 = {x for x in segs_before if x[0] == 1 and x[1] < seg_no(m1["start_wal"])}
    assert dry["backups_removed"] == [] and segs_before - wal_segments(repo.root, epoch) == before_b1, dry
    rc, out, err = walship_cmd(ws, repo.root, "verify")
    assert rc == 0, describe(rc, out, err)

    # Started later, the copy finds all its WAL and reaches the primary's rows.
    port = free_port()
    try:
        start_copy(dest, pg.dir, port)
        assert rows_at(pg.dir, port) == want
    finally:
        stop_server(dest)

    # Rebuilt again into the same directory: the earlier lease goes, the new one expires in 2 s.
    rc, out, err = rebuild(ws, repo, dest, f"--backup={b1}", "--force", "--lease=2s")
    assert rc == 0, describe(rc, out, err)
    assert f'removed 1 lease of earlier rebuilds of "{dest}"' in out, describe(rc, out, err)
    assert len(leases(repo.root)) == 1 and f"{copy_lease}.json" not in leases(repo.root)
    new_lease = leases(repo.root)[0][:-len(".json")]
    time.sleep(3)
    rc, out, err = prune(ws, repo.root, "--keep-backups=1", "--dry-run")
    assert rc == 0 and f"would remove expired lease {new_lease}" in out, describe(rc, out, err)
    assert leases(repo.root) == [f"{new_lease}.json"]
    rc, out, err = prune(ws, repo.root, "--keep-backups=1")
    assert rc == 0, describe(rc, out, err)
    assert f"removed expired lease {new_lease} (walship rebuild on {host}" in out and \
        "it held nothing back" in out, out
    assert out.startswith(f"removed 1 backup ({b1}), {len(b1_files)} WAL files"), out
    assert leases(repo.root) == [] and not (repo.root / epoch / "backups" / b1 / "manifest.json").exists()
    assert not wal_files(repo.root, epoch, b1_wal)


def test_prune_during_a_slow_recovery_on_encrypted_s3(ws, work, clusters, tmp, s3server, s3bucket):
    rem = Remote("s3-encrypted", s3server.url(s3bucket, PREFIX), s3server, bucket=s3bucket, encrypted=True)
    key = write_pg_file(work / "repo.key", b"ab" * 32 + b"\n", 0o600)
    # No prefetching: each segment is fetched when recovery asks for it (a prefetched one would be
    # served from the spool even once pruned).
    write_pg_file(ws.config, (s3server.config_text(s3bucket, PREFIX) + f"encryption-key-file = {key}\n"
                              "fetch-ahead = 0\n").encode(), 0o600)
    pg = archiving_primary(ws, rem, clusters)
    b1, b2, want = fill(pg, lambda: take_backup(ws, rem.root, pg))
    epoch = rem.epoch
    rc, out, err = walship_cmd(ws, rem.root, "list", "--json")
    assert rc == 0, describe(rc, out, err)
    listed = {b["id"]: b for ep in json.loads(out)["epochs"] for b in ep["backups"]}
    m1, m2 = listed[b1], listed[b2]  # manifest.json is encrypted
    needed = {f"{epoch}/wal/{n[:16]}/{n}" for n in
              (f"00000001{s // 256:08X}{s % 256:08X}" for s in range(seg_no(m1["start_wal"]),
                                                                        seg_no(m2["start_wal"])))}
    assert needed <= set(rem.keys(f"{epoch}/wal/"))

    # Every segment GET held 1 s: recovery from B1 takes a while.
    s3server.add_fault(action="delay", delay_ms=1000, method="GET", path_regex=r"/wal/[0-9A-F]{16}/[0-9A-F]{24}$",
                       count=-1)
    dest = make_pg_dir(tmp / "copy", 0o700)
    port = free_port()
    try:
        proc = rebuild_bg(ws, rem.root, dest, f"--backup={b1}", "--start", f"--port={port}", log=tmp / "rb")
        wait_for(lambda: "restored log file" in text(dest / "walship-rebuild.log"), 120,
                 lambda: text(tmp / "rb.out") + text(tmp / "rb.err"))
        assert proc.poll() is None, "recovery ended before prune could run"
        rc, out, err = prune(ws, rem.root, "--keep-backups=1")
        assert rc == 0, describe(rc, out, err)
        left = set(rem.keys(f"{epoch}/"))
        assert not needed - left, f"prune removed WAL recovery still needs: {sorted(needed - left)}\n{out}"
        assert f"{epoch}/backups/{b1}/manifest.json" in left
        assert f'kept backup "{b1}" of epoch "{epoch}", which retention would remove' in out, out
        s3server.clear_faults()
        assert proc.wait(timeout=300) == 0, text(tmp / "rb.out") + text(tmp / "rb.err")
        out = text(tmp / "rb.out")
        assert "server was promoted" in out and "recovery has ended: lease " in out and " released" in out, out
        assert rows_at(pg.dir, port) == want
    finally:
        s3server.clear_faults()
        stop_server(dest)
    assert rem.keys("leases/") == []
    rc, out, err = prune(ws, rem.root, "--keep-backups=1")
    assert rc == 0 and out.startswith(f"removed 1 backup ({b1})"), describe(rc, out, err)
