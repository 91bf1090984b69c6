"""scripts/standby-demo, the primary/standby walkthrough: it passes every
step's check with the real programs, and it fails with a clear message when
the archive path is broken or a program is missing.

The script starts its own PostgreSQL servers (as postgres) in a temporary
directory it names on its first line; if it dies without cleaning up, the
servers left there are stopped here."""

import os
import re
import shutil
from pathlib import Path

from pgcluster import PG_BIN, make_pg_dir, remove_tree, run

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "standby-demo"


def demo_dirs():
    return set(Path("/tmp").glob("walship-standby-demo.*"))


def run_demo(bindir, *args, timeout=600):
    """Run the script as the caller (it switches to postgres itself when root)."""
    env = {"WALSHIP_BIN": str(bindir), "PGBIN": str(PG_BIN)}
    before = demo_dirs()
    try:
        rc, out, err = run([SCRIPT, *args], user=None, env=env, timeout=timeout)
    finally:
        # Only if the script was killed before its own clean-up: stop what it started.
        for d in demo_dirs() - before:
            stop_leftover_servers(d)
    return rc, out, err


def workdir_of(out):
    m = re.search(r'^standby-demo: working in "([^"]+)"', out, re.M)
    assert m, f"the script did not name its directory:\n{out}"
    return Path(m.group(1))


def stop_leftover_servers(work):
    for pid in work.glob("*/postmaster.pid"):
        run([PG_BIN / "pg_ctl", "-D", pid.parent, "-m", "immediate", "-w", "stop"], timeout=60)


def processes_using(path):
    """Live processes whose command line mentions path (servers, walship-fetch prefetchers)."""
    found = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            cmdline = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(path) in cmdline:
            found.append(f"{p.name}: {cmdline}")
    return found


def test_every_step_passes_and_nothing_is_left(ws):
    rc, out, err = run_demo(ws.bindir)
    work = workdir_of(out)
    assert rc == 0, f"standby-demo failed with exit code {rc}\nstdout:\n{out}\nstderr:\n{err}"

    headers = [f"== {n}. " for n in range(1, 6)]
    positions = [out.find(h) for h in headers]
    assert all(p >= 0 for p in positions) and positions == sorted(positions), f"steps missing or out of order:\n{out}"

    def section(n):
        start = positions[n - 1]
        end = positions[n] if n < 5 else len(out)
        return out[start:end]

    # 1: archived and backed up
    assert re.search(r"ok: backup \d{8}T\d{6}Z in the repository", section(1)), section(1)
    assert re.search(r"ok: archived through 0{7}1[0-9A-F]{16}: \d+ files, 0 failures", section(1)), section(1)

    # 2: the rebuilt standby uses walship-fetch and streams
    s2 = section(2)
    assert "ok: standby.signal written" in s2 and "walship-fetch" in s2 and "--mode=standby %f %p" in s2, s2
    assert ("ok: streaming: standby's pg_stat_wal_receiver status streaming; "
            "primary's pg_stat_replication: standby streaming") in s2, s2

    # 3: no streaming, WAL restored from the archive, replayed to the end of the last archived segment
    s3 = section(3)
    assert "ok: streaming stopped: no walsender for the standby" in s3, s3
    m = re.search(r"walship-fetch restored (\d+) WAL files since the cut", s3)
    assert m and int(m.group(1)) >= 3, s3
    last = re.search(r"last completed segment ([0-9A-F]{24}) \(ends at ([0-9A-F]+/[0-9A-F]+)\)", s3)
    assert last, s3
    assert f"-> {last.group(2)}, the end of {last.group(1)}" in s3, s3
    assert "still not streaming" in s3 and "ok: lag: 0 bytes behind the archived WAL" in s3, s3

    # 4: promoted to timeline 2, which walship list shows with its history file
    s4 = section(4)
    assert "ok: timeline: 2 (pg_walfile_name(pg_current_wal_lsn()) = 00000002" in s4, s4
    assert re.search(r'walship list shows "timeline 2: .*00000002[0-9A-F]{16}.*, history file"', s4), s4

    # 5: the old primary streams from the new one on timeline 2
    s5 = section(5)
    assert "ok: old primary stopped" in s5, s5
    assert "status streaming on timeline 2; new primary's pg_stat_replication: old-primary streaming" in s5, s5

    # lag and rows after each write, with more rows each time
    for n in (2, 5):
        assert "ok: lag: 0 bytes (primary flushed" in section(n), section(n)
    counts = []
    for n in (2, 3, 5):
        m = re.search(r"ok: rows equal: (\d+) = (\d+) ", section(n))
        assert m and m.group(1) == m.group(2), section(n)
        counts.append(int(m.group(1)))
    assert counts == sorted(set(counts)), f"row counts did not grow from step to step: {counts}"
    assert "every check passed" in out

    assert not work.exists(), f"{work} was not removed"
    assert processes_using(work) == [], processes_using(work)


def test_a_broken_archive_fails_step_3_and_keeps_the_files(ws, tmp):
    """walship-fetch replaced by a program that never finds a file: the standby
    still streams (step 2), but once streaming is cut it cannot keep up."""
    bindir = make_pg_dir(tmp / "bin", 0o755)
    for prog in ("walship", "walship-push"):
        shutil.copy2(ws.bindir / prog, bindir / prog)
    fake = bindir / "walship-fetch"
    fake.write_text("#!/bin/sh\n# the archive never has the file\nexit 1\n")
    os.chmod(fake, 0o755)

    rc, out, err = run_demo(bindir, "--timeout=15")
    work = workdir_of(out)
    try:
        assert rc == 1, f"exit code {rc}\nstdout:\n{out}\nstderr:\n{err}"
        assert "ok: streaming: standby's pg_stat_wal_receiver status streaming" in out, out
        assert re.search(r"^standby-demo: error: the standby did not replay to [0-9A-F]+/[0-9A-F]+ "
                         r"\(the end of [0-9A-F]{24}\) from the archive within 15 seconds$", err, re.M), err
        assert "walship-fetch restored" not in out and "== 4." not in out, out
        assert f'files kept in "{work}"' in err, err
        assert (work / "standby" / "walship-rebuild.log").is_file()
        assert not (work / "standby" / "postmaster.pid").exists(), "the standby was left running"
        assert processes_using(work) == [], processes_using(work)
    finally:
        remove_tree(work)


def test_a_missing_program_is_named_before_anything_starts(tmp):
    before = demo_dirs()
    rc, out, err = run_demo(tmp)
    assert rc == 1, f"exit code {rc}\nstdout:\n{out}\nstderr:\n{err}"
    assert f'standby-demo: error: "{tmp}/walship" is missing or not executable' in err, err
    assert "standby-demo: hint: Run make first, or set WALSHIP_BIN" in err, err
    assert demo_dirs() == before


def test_usage_errors_exit_2():
    rc, out, err = run([SCRIPT, "--timeout=soon"], user=None)
    assert rc == 2 and 'invalid value "soon" for --timeout' in err, err
    rc, out, err = run([SCRIPT, "--frobnicate"], user=None)
    assert rc == 2 and 'unknown argument "--frobnicate"' in err and "--help" in err, err
