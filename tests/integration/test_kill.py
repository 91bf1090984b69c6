"""walship-push interrupted: SIGKILL at random moments never leaves a visible
partial object, SIGTERM is answered promptly with temp files removed, and a
full filesystem fails cleanly."""

import os
import random
import signal
import subprocess
import time

import pytest

from pgcluster import (
    FIRST_SEGMENT,
    describe,
    make_pg_dir,
    popen,
    run,
    sha256_file,
    write_pg_file,
    zstd_sha256,
)

KILL_TRIALS = 50
KILL_BUDGET_S = 60


def make_segment(src, dst, random_from, random_len):
    """A copy of a real segment (valid page header) whose zero-filled tail is
    partly replaced with random bytes, so that the object is large and
    compressing and writing it take measurable time."""
    with open(src, "rb") as f:
        data = bytearray(f.read())
    assert not any(data[random_from:random_from + random_len]), "the region to randomise holds WAL"
    data[random_from:random_from + random_len] = os.urandom(random_len)
    return write_pg_file(dst, bytes(data), 0o600)


def check_visible_objects(repo, name, want_sha, what):
    """Every non-dot file under wal/ must be the complete object for name."""
    objects = repo.objects()
    extra = sorted(set(objects) - {name})
    assert not extra, f"{what}: unexpected visible files in the repository: {extra}"
    if name in objects:
        assert objects[name] == repo.key_path(name)
        got = zstd_sha256(objects[name])
        assert got == want_sha, f"{what}: a visible object is not the complete segment (sha {got})"
        return True
    return False


def clear_wal(repo):
    """Remove every object and temp file, so the next push writes again."""
    for dirpath, _, filenames in os.walk(repo.root):
        for n in filenames:
            if n != "walship.json":
                os.unlink(os.path.join(dirpath, n))


def push_cmd(ws, repo, seg, *opts):
    return [ws.push_bin, f"--config={ws.config}", f"--repo={repo.root}", *opts, seg, FIRST_SEGMENT]


def timed_push(ws, repo, seg, cwd):
    t0 = time.monotonic()
    rc, out, err = run(push_cmd(ws, repo, seg), cwd=cwd)
    elapsed = time.monotonic() - t0
    assert rc == 0, "a plain push failed\n" + describe(rc, out, err)
    return elapsed


@pytest.fixture
def big(ws, work, datadir64):
    repo = ws.init(work / "repo", datadir64)
    seg = make_segment(datadir64 / "pg_wal" / FIRST_SEGMENT, work / FIRST_SEGMENT, 32 << 20, 24 << 20)
    return repo, seg, sha256_file(seg), datadir64


def test_sigkill_at_random_moments(ws, big):
    repo, seg, want, cwd = big
    durations = []
    for _ in range(2):
        durations.append(timed_push(ws, repo, seg, cwd))
        assert check_visible_objects(repo, FIRST_SEGMENT, want, "plain push")
        clear_wal(repo)
    duration = max(durations)

    seed = int(os.environ.get("WALSHIP_TEST_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    killed = visible_after_kill = 0
    t_start = time.monotonic()
    for trial in range(KILL_TRIALS):
        what = f"trial {trial} (seed {seed}, push takes {duration:.3f} s)"
        delay = rng.uniform(0, duration)
        t0 = time.monotonic()
        proc = popen(push_cmd(ws, repo, seg), cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(max(0.0, t0 + delay - time.monotonic()))
        proc.kill()
        _, err = proc.communicate(timeout=30)
        if proc.returncode == -signal.SIGKILL:
            killed += 1
        else:
            assert proc.returncode == 0, f"{what}: push failed before the kill\n{err.decode(errors='replace')}"
        if check_visible_objects(repo, FIRST_SEGMENT, want, what + " after SIGKILL"):
            visible_after_kill += 1

        rc, out, err = run(push_cmd(ws, repo, seg), cwd=cwd)
        assert rc == 0, f"{what}: the push after a kill failed\n" + describe(rc, out, err)
        assert check_visible_objects(repo, FIRST_SEGMENT, want, what + " after the retry"), \
            f"{what}: no object after a successful push"
        clear_wal(repo)
        if trial >= 10 and time.monotonic() - t_start > KILL_BUDGET_S * 2:
            pytest.fail(f"only {trial + 1} kill trials fit in {2 * KILL_BUDGET_S} s (push takes {duration:.3f} s)")

    print(f"seed {seed}: {killed}/{KILL_TRIALS} pushes killed mid-way, "
          f"{visible_after_kill} left a complete object; one push takes {duration:.3f} s")
    assert killed >= KILL_TRIALS // 3, (
        f"only {killed} of {KILL_TRIALS} pushes were still running when killed (push takes {duration:.3f} s)"
    )


def terminate(cmd, cwd, delay, what):
    """Start cmd, send SIGTERM after delay seconds; it must exit within 2 s.
    Returns (exit status, stderr)."""
    proc = popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(delay)
    proc.send_signal(signal.SIGTERM)
    t_sig = time.monotonic()
    try:
        _, err = proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"{what}: {os.path.basename(str(cmd[0]))} still running 5 s after SIGTERM")
    waited = time.monotonic() - t_sig
    assert waited < 2.0, f"{what}: {os.path.basename(str(cmd[0]))} took {waited:.2f} s to exit after SIGTERM"
    return proc.returncode, err.decode(errors="replace")


def test_sigterm_exits_promptly_and_removes_temp_files(ws, big):
    repo, seg, want, cwd = big
    duration = timed_push(ws, repo, seg, cwd)
    clear_wal(repo)
    interrupted = 0
    rng = random.Random(1)
    for attempt in range(10):
        what = f"attempt {attempt}"
        returncode, err = terminate(push_cmd(ws, repo, seg), cwd, duration * rng.uniform(0.3, 0.8), what)
        assert returncode in (0, 1), \
            f"{what}: exit status {returncode} after SIGTERM (must be 1, never above 125)\n{err}"
        if returncode != 0:
            interrupted += 1
        assert repo.dot_files() == [], f"{what}: temp files left after SIGTERM: {repo.dot_files()}"
        check_visible_objects(repo, FIRST_SEGMENT, want, what + " after SIGTERM")
        clear_wal(repo)
    assert interrupted >= 1, f"no push was still running when SIGTERM arrived (push takes {duration:.3f} s)"


def test_fetch_sigterm_exits_promptly_and_leaves_no_partial_target(ws, big, work):
    """PostgreSQL sends SIGTERM at shutdown: walship-fetch stops at once
    (exit 200, never a code read as "not found") and %p is never left half
    written, nor its temporary file beside it."""
    repo, seg, want, cwd = big
    timed_push(ws, repo, seg, cwd)
    out_dir = make_pg_dir(work / "fetch-out", 0o700)
    target = out_dir / "RECOVERYXLOG"
    cmd = [ws.fetch_bin, f"--config={ws.config}", f"--repo={repo.root}", "--mode=recovery", FIRST_SEGMENT, target]
    t0 = time.monotonic()
    rc, out, err = run(cmd, cwd=cwd)
    duration = time.monotonic() - t0
    assert rc == 0 and sha256_file(target) == want, "a plain fetch failed\n" + describe(rc, out, err)
    target.unlink()

    interrupted = 0
    rng = random.Random(2)
    for attempt in range(10):
        what = f"attempt {attempt}"
        returncode, err = terminate(cmd, cwd, duration * rng.uniform(0.2, 0.8), what)
        left = sorted(os.listdir(out_dir))
        if returncode == 0:
            assert left == ["RECOVERYXLOG"] and sha256_file(target) == want, f"{what}: exit 0 but {left}"
            target.unlink()
            continue
        interrupted += 1
        assert returncode == 200, f"{what}: exit status {returncode} after SIGTERM (must be 200)\n{err}"
        assert left == [], f"{what}: files left where %p was to be written after SIGTERM: {left}"
    assert interrupted >= 1, f"no fetch was still running when SIGTERM arrived (fetch takes {duration:.3f} s)"


@pytest.fixture
def small_fs(tmp):
    mnt = tmp / "fullfs"
    mnt.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k,mode=0755", "tmpfs", str(mnt)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert p.returncode == 0, f"cannot mount a tmpfs (the tests must run as root): {p.stdout.decode()}"
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
        if os.path.ismount(mnt):
            subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_filesystem(ws, datadir, work, small_fs):
    root = make_pg_dir(small_fs / "repo", 0o700)
    repo = ws.init(root, datadir)
    seg = make_segment(datadir / "pg_wal" / FIRST_SEGMENT, work / FIRST_SEGMENT, 6 << 20, 10 << 20)
    free_before = os.statvfs(small_fs).f_bfree

    rc, out, err = ws.push(repo.root, seg, FIRST_SEGMENT, datadir)
    assert rc == 1, "a push that does not fit must fail with exit 1\n" + describe(rc, out, err)
    assert "no space left on device" in err.lower(), describe(rc, out, err)
    assert repo.objects() == {}, f"a partial object is visible: {repo.objects()}"
    assert repo.dot_files() == [], f"temp files left on the full filesystem: {repo.dot_files()}"
    assert os.statvfs(small_fs).f_bfree >= free_before, "the failed push left space in use"

    # With room again the same push works.
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_fs)], check=True)
    rc, out, err = ws.push(repo.root, seg, FIRST_SEGMENT, datadir)
    assert rc == 0, describe(rc, out, err)
    assert zstd_sha256(repo.key_path(FIRST_SEGMENT)) == sha256_file(seg)
