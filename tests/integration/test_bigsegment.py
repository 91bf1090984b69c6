"""1 GiB WAL segments: pushed and fetched back identical, with walship-push and
walship-fetch streaming through fixed buffers: their peak RSS for a 1 GiB
segment is about what it is for a 16 MiB one.  (The absolute memory target,
16 MiB, is measured by `make bench`, not asserted here.)

initdb --wal-segsize=1024 already writes a valid 1 GiB segment, so no server
is needed."""

import os
import shutil

from pgcluster import FIRST_SEGMENT, Cluster, describe, make_pg_dir, run, sha256_file, zstd_sha256

TIME = "/usr/bin/time"
# Allowed growth of peak RSS from a 16 MiB to a 1 GiB segment: far below the
# 1008 MiB the content grows by, above allocator and sanitizer noise.
GROWTH_LIMIT_KIB = 8 * 1024


def run_measured(cmd, cwd, rss_file):
    """Run cmd as postgres under /usr/bin/time; (rc, out, err, peak RSS in KiB).

    /usr/bin/time forks the program from its own small process, so the
    figure is the program's, not inflated by this Python process (a direct
    fork of pytest would carry its resident pages into ru_maxrss)."""
    assert os.path.exists(TIME), f"{TIME} is missing (apt-get install time)"
    rc, out, err = run([TIME, "-o", rss_file, "-f", "%M", *cmd], cwd=cwd, timeout=300)
    lines = [line for line in open(rss_file).read().splitlines() if line.strip()]
    return rc, out, err, int(lines[-1])


def push_and_fetch(ws, work, cluster, tag):
    """Push the cluster's first segment and fetch it back; returns the two peak RSS figures."""
    seg = cluster.data / "pg_wal" / FIRST_SEGMENT
    want = sha256_file(seg)
    repo = ws.init(work / f"repo-{tag}", cluster.data)

    push = [ws.push_bin, f"--config={ws.config}", f"--repo={repo.root}", f"pg_wal/{FIRST_SEGMENT}", FIRST_SEGMENT]
    rc, out, err, push_rss = run_measured(push, cluster.data, work / f"push-rss-{tag}")
    assert rc == 0, f"pushing the {tag} segment failed\n" + describe(rc, out, err)
    assert zstd_sha256(repo.key_path(FIRST_SEGMENT)) == want, f"zstd -d of the stored {tag} segment differs"

    out_dir = make_pg_dir(work / f"out-{tag}")
    target = out_dir / "RECOVERYXLOG"
    fetch = [ws.fetch_bin, f"--config={ws.config}", f"--repo={repo.root}", "--mode=recovery", FIRST_SEGMENT, target]
    rc, out, err, fetch_rss = run_measured(fetch, cluster.data, work / f"fetch-rss-{tag}")
    assert rc == 0, f"fetching the {tag} segment failed\n" + describe(rc, out, err)
    assert target.stat().st_size == seg.stat().st_size
    assert sha256_file(target) == want, f"the fetched {tag} segment differs"

    # Same content pushed again: verified and accepted without rewriting.
    rc, out, err = run(push, cwd=cluster.data, timeout=300)
    assert rc == 0, describe(rc, out, err)
    shutil.rmtree(out_dir)
    return push_rss, fetch_rss


def test_one_gib_segment_round_trip_in_bounded_memory(ws, work, tmp):
    small = Cluster(tmp, "small").initdb()
    big = Cluster(tmp, "big").initdb(wal_segsize=1024)
    assert (big.data / "pg_wal" / FIRST_SEGMENT).stat().st_size == 1 << 30

    small_push, small_fetch = push_and_fetch(ws, work, small, "16MiB")
    big_push, big_fetch = push_and_fetch(ws, work, big, "1GiB")
    print(f"peak RSS KiB: push {small_push} (16 MiB) / {big_push} (1 GiB), "
          f"fetch {small_fetch} / {big_fetch}")
    assert big_push - small_push < GROWTH_LIMIT_KIB, (
        f"walship-push memory grows with the file: {small_push} KiB for 16 MiB, {big_push} KiB for 1 GiB")
    assert big_fetch - small_fetch < GROWTH_LIMIT_KIB, (
        f"walship-fetch memory grows with the file: {small_fetch} KiB for 16 MiB, {big_fetch} KiB for 1 GiB")
