"""The release programs carry no test hook.

`make` builds the programs that `make install` and the packages ship
($WALSHIP_RELEASE_BIN, default <repo>/build/bin); the other tests run the test
build ($WALSHIP_BIN, build/testing/bin), compiled with -DWALSHIP_TESTING so
that environment variables such as WALSHIP_TEST_LOCK_EXPIRY shorten a lock's
expiry.  In a release program nothing may be set that way: a production lock's
expiry is REPO_LOCK_EXPIRY (300 s) whatever the environment says.  Each check
is run on the test build too, so that it is known to see the hook where there
is one.
"""

import json
import os
import shutil
import time
from pathlib import Path

from pgcluster import describe, run, write_pg_file

REPO_ROOT = Path(__file__).resolve().parents[2]
RELEASE_BIN = Path(os.environ.get("WALSHIP_RELEASE_BIN") or REPO_ROOT / "build" / "bin")
PROGRAMS = ("walship", "walship-push", "walship-fetch")


def release_programs(tmp):
    """The release programs, copied where the postgres user can run them."""
    dest = tmp / "release-bin"
    dest.mkdir(mode=0o755)
    for prog in PROGRAMS:
        src = RELEASE_BIN / prog
        assert src.is_file(), f"{src} is missing: build the release programs with make (or set WALSHIP_RELEASE_BIN)"
        shutil.copy2(src, dest / prog)
        os.chmod(dest / prog, 0o755)
    return dest


def test_release_programs_name_no_test_variable(ws, tmp):
    bindir = release_programs(tmp)
    for prog in PROGRAMS:
        hooked = b"WALSHIP_TEST_" in (ws.bindir / prog).read_bytes()
        assert hooked, f"the test build's {prog} names no WALSHIP_TEST_ variable"
        leaked = b"WALSHIP_TEST_" in (bindir / prog).read_bytes()
        assert not leaked, f"{RELEASE_BIN / prog} names a WALSHIP_TEST_ variable: a test hook is in the release build"


def test_release_walship_ignores_the_lock_expiry_hook(ws, repo, tmp):
    """A lock whose heartbeat stopped 30 s ago, with WALSHIP_TEST_LOCK_EXPIRY=2: the test build
    takes it over; the release walship leaves it alone (it expires after 300 s)."""
    release = release_programs(tmp) / "walship"
    env = {"WALSHIP_TEST_LOCK_EXPIRY": "2"}
    now = int(time.time())
    lock = {"purpose": "backup", "host": "elsewhere.example", "pid": 4242, "token": "f" * 32,
            "started": now - 60, "started_at": "2026-11-25T12:00:00Z", "heartbeat": now - 30, "heartbeat_at": ""}
    lock_path = repo.root / "walship.lock"

    write_pg_file(lock_path, json.dumps(lock).encode(), 0o640)
    rc, out, err = run([release, f"--config={ws.config}", "prune", f"--repo={repo.root}", "--keep-backups=1"],
                       cwd=ws.work, env=env)
    assert rc == 1 and "is locked by walship backup on elsewhere.example (pid 4242)" in err, describe(rc, out, err)
    assert "expires 300 seconds after its last heartbeat" in err, describe(rc, out, err)
    assert json.loads(lock_path.read_bytes()) == lock

    rc, out, err = run([ws.walship, f"--config={ws.config}", "prune", f"--repo={repo.root}", "--keep-backups=1"],
                       cwd=ws.work, env=env)
    assert rc == 1 and "taking over the lock" in err and "expiry 2 seconds" in err, describe(rc, out, err)
    assert "holds no complete backup" in err, describe(rc, out, err)
