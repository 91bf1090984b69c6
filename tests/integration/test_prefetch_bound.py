"""spool-max-size bounds the prefetch spool in bytes: a rebuild replaying a few
dozen 1 MiB segments with fetch-ahead = 8 but room for only 3 segments never
finds more than 3 MiB in the spool (finished and half-written files alike),
still serves segments from it, and reaches the primary's rows."""

import threading
import time

from pgcluster import describe, free_port, make_pg_dir
from test_backup import backup
from test_prefetch import SERVED, make_spool, set_config, table_state, wait_no_prefetcher
from test_rebuild import rebuild, stop_server

MIB = 1024 * 1024


def spool_bytes(spool):
    """Bytes of every file in every per-data-directory spool (the prefetchers' logs sit beside them)."""
    total = 0
    for d in spool.glob("*/fetch/*"):
        try:
            if not d.is_dir():
                continue
            for f in d.iterdir():
                try:
                    st = f.stat()
                except FileNotFoundError:
                    continue  # served or trimmed while we looked
                if f.is_file():
                    total += max(st.st_size, st.st_blocks * 512)
        except FileNotFoundError:
            continue
    return total


def test_spool_never_exceeds_spool_max_size(ws, work, clusters, tmp):
    spool = make_spool(tmp)
    pg = clusters.new("primary").initdb(wal_segsize=1)
    repo = ws.init(work / "repo", pg.data)
    pg.configure(archive_mode=True, archive_command=ws.archive_command(repo.root))
    pg.start()
    pg.sql("CREATE TABLE marker (id int PRIMARY KEY)")
    pg.pgbench("-i", "-s", "1", "-q")
    rc, out, err = backup(ws, repo.root, pg)
    assert rc == 0, describe(rc, out, err)
    for i in range(4):
        pg.pgbench("-c", "2", "-j", "2", "-t", "1000")
        pg.sql("INSERT INTO marker VALUES (%s)", (i,))
    last = pg.switch_wal()
    pg.wait_archived(last, timeout=180)
    want = table_state(pg.dir, pg.port)
    segments = len([n for n in repo.objects() if len(n) == 24])
    assert segments >= 20, f"only {segments} segments to replay: the bound would not be reached"

    set_config(ws, f"spool-path = {spool}", "fetch-ahead = 8", "spool-max-size = 3", "log-level = info")
    dest = make_pg_dir(tmp / "rebuilt", 0o700)
    port = free_port()
    samples, stop = [], threading.Event()

    def sample():
        while not stop.is_set():
            samples.append(spool_bytes(spool))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        rc, out, err = rebuild(ws, repo, dest, "--start", f"--port={port}", timeout=300)
        stop.set()
        sampler.join()
        assert rc == 0 and "server was promoted" in out, describe(rc, out, err)
        assert table_state(pg.dir, port) == want
        served = (dest / "walship-rebuild.log").read_text(errors="replace").count(SERVED)
        wait_no_prefetcher(ws, spool)
    finally:
        stop.set()
        if sampler.is_alive():
            sampler.join()
        stop_server(dest)
    print(f"spool samples: {len(samples)}, max {max(samples)} bytes, served {served}")
    # How many come from the spool depends on how far the prefetcher got ahead of a replay from local
    # disk (4 to 19 in runs here): the bound must not stop it from serving at all.
    assert served >= 1, "no segment came from the spool"
    assert max(samples) > 0, "the sampler never saw a spooled file"
    assert max(samples) <= 3 * MIB, f"the spool held {max(samples)} bytes, spool-max-size is 3 MiB"
