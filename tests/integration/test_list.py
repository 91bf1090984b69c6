"""walship list against a real PostgreSQL 15 repository: the backups walship
backup wrote, and the window each timeline can be rebuilt to, which shrinks
to the first missing WAL file when one is removed."""

import json
import os
import re
import time
from datetime import datetime, timezone

from pgcluster import describe, has_phrase, run
from test_backup import archiving_cluster, backup, lsn


def walship_list(ws, repo, *opts):
    return run([ws.walship, f"--config={ws.config}", "list", f"--repo={repo.root}", *opts], cwd=ws.work)


def test_list_shows_backups_and_recoverable_window(ws, work, clusters):
    pg, repo = archiving_cluster(ws, work, clusters)
    rc, out, err = walship_list(ws, repo)
    assert rc == 0 and has_phrase(out, "no complete backups"), describe(rc, out, err)

    pg.pgbench("-i", "-s", "1", "-q")
    rc, out, err = backup(ws, repo.root, pg)
    assert rc == 0, describe(rc, out, err)
    pg.pgbench("-c", "2", "-j", "2", "-t", "300")
    last = None
    for _ in range(3):
        last = pg.switch_wal()
    pg.wait_archived(last)

    rc, out, err = walship_list(ws, repo, "--json")
    assert rc == 0, describe(rc, out, err)
    doc = json.loads(out)
    epoch = doc["epochs"][0]
    manifests = sorted(p.parent.name for p in (repo.root / repo.epoch / "backups").glob("*/manifest.json"))
    assert [b["id"] for b in epoch["backups"]] == manifests and len(manifests) == 1, out
    b = epoch["backups"][0]
    tl1 = [t for t in epoch["timelines"] if t["timeline"] == 1][0]
    assert tl1["from_backup"] == b["id"] and tl1["from_lsn"] == b["stop_lsn"], tl1
    # The window reaches the end of the last archived segment.
    assert tl1["to_wal"] == last, f"window ends at {tl1['to_wal']}, archive at {last}"
    assert lsn(tl1["to_lsn"]) > lsn(b["stop_lsn"])
    assert tl1["gaps"] == [], tl1

    rc, out, err = walship_list(ws, repo)
    assert rc == 0, describe(rc, out, err)
    assert b["id"] in out and f"timeline 1: from {b['stop_lsn']}" in out, out

    # Remove a WAL file after the backup: the window stops before it and the gap is named.
    stop = int(b["stop_wal"][16:], 16)
    hole = f"{b['stop_wal'][:16]}{stop + 1:08X}"
    repo.key_path(hole).unlink()
    rc, out, err = walship_list(ws, repo, "--json")
    assert rc == 0, describe(rc, out, err)
    tl1 = [t for t in json.loads(out)["epochs"][0]["timelines"] if t["timeline"] == 1][0]
    assert tl1["to_wal"] == b["stop_wal"], tl1
    assert tl1["gaps"] and tl1["gaps"][0]["first_missing"] == hole, tl1
    rc, out, err = walship_list(ws, repo)
    assert has_phrase(out, f"gap: {hole} missing"), out


def test_list_reports_a_damaged_manifest_and_fails(ws, work, clusters):
    pg, repo = archiving_cluster(ws, work, clusters)
    rc, out, err = backup(ws, repo.root, pg)
    assert rc == 0, describe(rc, out, err)
    manifest = next((repo.root / repo.epoch / "backups").glob("*/manifest.json"))
    manifest.write_text(manifest.read_text().replace('"timeline": 1', '"timeline": "one"'))
    rc, out, err = walship_list(ws, repo)
    assert rc == 1, describe(rc, out, err)
    assert has_phrase(err, "manifest.json") and has_phrase(err, "problem"), describe(rc, out, err)


def test_list_gives_the_recoverable_end_as_a_time(ws, work, clusters):
    """Each range ends with when its last WAL file was archived, in text and JSON: the time the
    repository stored that file."""
    pg, repo = archiving_cluster(ws, work, clusters)
    rc, out, err = backup(ws, repo.root, pg)
    assert rc == 0, describe(rc, out, err)
    pg.sql("CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g")
    time.sleep(1.1)  # the end's time differs from the backup's
    last = pg.switch_wal()
    pg.wait_archived(last)
    stored = datetime.fromtimestamp(int(os.stat(repo.key_path(last)).st_mtime), timezone.utc)

    rc, out, err = walship_list(ws, repo, "--json")
    assert rc == 0, describe(rc, out, err)
    tl1 = [t for t in json.loads(out)["epochs"][0]["timelines"] if t["timeline"] == 1][0]
    assert tl1["to_wal"] == last, tl1
    assert tl1["to_archived_time"] == stored.strftime("%Y-%m-%dT%H:%M:%SZ"), tl1
    assert tl1["ranges"][-1]["to_archived_time"] == tl1["to_archived_time"], tl1

    rc, out, err = walship_list(ws, repo)
    assert rc == 0, describe(rc, out, err)
    shown = stored.strftime("%Y-%m-%d %H:%M:%S")
    assert re.search(rf"^  timeline 1: from .* to {tl1['to_lsn']} \(end of {last}, archived {shown}\)$", out, re.M), out
