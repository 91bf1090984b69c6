"""1 GiB WAL segments: pushed and fetched back identical, with walship-push
streaming through fixed buffers (peak RSS well under the segment size).

initdb --wal-segsize=1024 already writes a valid 1 GiB segment, so no server
is needed."""

import os
import shutil

from pgcluster import FIRST_SEGMENT, Cluster, describe, make_pg_dir, run, sha256_file, zstd_sha256

TIME = "/usr/bin/time"
RSS_LIMIT_KIB = 16 * 1024


def run_measured(cmd, cwd, rss_file):
    """Run cmd as postgres under /usr/bin/time; (rc, out, err, peak RSS in KiB).

    /usr/bin/time forks the program from its own small process, so the
    figure is the program's, not inflated by this Python process (a direct
    fork of pytest would carry its resident pages into ru_maxrss)."""
    assert os.path.exists(TIME), f"{TIME} is missing (apt-get install time)"
    rc, out, err = run([TIME, "-o", rss_file, "-f", "%M", *cmd], cwd=cwd, timeout=300)
    lines = [line for line in open(rss_file).read().splitlines() if line.strip()]
    return rc, out, err, int(lines[-1])


def test_one_gib_segment_round_trip(ws, work, tmp):
    big = Cluster(tmp, "big").initdb(wal_segsize=1024)
    seg = big.data / "pg_wal" / FIRST_SEGMENT
    assert seg.stat().st_size == 1 << 30
    repo = ws.init(work / "repo", big.data)
    want = sha256_file(seg)

    push = [ws.push_bin, f"--config={ws.config}", f"--repo={repo.root}", f"pg_wal/{FIRST_SEGMENT}", FIRST_SEGMENT]
    rc, out, err, rss = run_measured(push, big.data, work / "push-rss")
    assert rc == 0, "pushing a 1 GiB segment failed\n" + describe(rc, out, err)
    obj = repo.key_path(FIRST_SEGMENT)
    assert zstd_sha256(obj) == want, "zstd -d of the stored 1 GiB segment differs"
    assert rss < RSS_LIMIT_KIB, f"walship-push peaked at {rss} KiB for a 1 GiB segment (limit {RSS_LIMIT_KIB} KiB)"

    out_dir = make_pg_dir(work / "out")
    target = out_dir / "RECOVERYXLOG"
    fetch = [ws.fetch_bin, f"--config={ws.config}", f"--repo={repo.root}", "--mode=recovery", FIRST_SEGMENT, target]
    rc, out, err, fetch_rss = run_measured(fetch, big.data, work / "fetch-rss")
    assert rc == 0, "fetching a 1 GiB segment failed\n" + describe(rc, out, err)
    assert target.stat().st_size == 1 << 30
    assert sha256_file(target) == want, "the fetched 1 GiB segment differs"
    print(f"peak RSS: walship-push {rss} KiB, walship-fetch {fetch_rss} KiB")

    # Same content pushed again: verified and accepted without rewriting.
    rc, out, err = run(push, cwd=big.data, timeout=300)
    assert rc == 0, describe(rc, out, err)
    shutil.rmtree(out_dir)
