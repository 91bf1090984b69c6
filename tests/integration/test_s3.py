"""The S3 driver against a real server (s3rver behind the checking proxy of
tests/s3proxy, see s3server.py): a segment pushed to s3://bucket/prefix is read
back by boto3 and stock `zstd -d` and fetched back identical; wrong secrets,
session tokens, credentials files with profiles, missing buckets, 403 for
missing keys (no s3:ListBucket), injected 5xx and dropped connections, a
budget running out, a skewed clock, multipart uploads in bounded memory, and
plain http:// to a host that is not loopback."""

import json
import os
import re
import subprocess

from pgcluster import (
    FIRST_SEGMENT,
    describe,
    free_port,
    has_phrase,
    make_pg_dir,
    pg_copy,
    run,
    sha256_file,
    write_pg_file,
)

PREFIX = "cluster/a"
TIME = "/usr/bin/time"
MIB = 1 << 20


def write_config(ws, name, text):
    """A walship config file holding secrets: 0600, owned by postgres."""
    return write_pg_file(ws.work / name, text, 0o600)


def s3_config(ws, server, extra="", token=False, name="s3.conf"):
    return write_config(ws, name, server.config_text(token=token) + extra)


def object_key(server, bucket, prefix, name):
    """The S3 key of a WAL file, found through walship.json as walship wrote it."""
    c = server.boto3_client()
    meta = json.loads(c.get_object(Bucket=bucket, Key=f"{prefix}/walship.json")["Body"].read())
    epoch = meta["epochs"][-1]["id"]
    return f"{prefix}/{epoch}/wal/{name[:16]}/{name}"


def fetch_to(ws, url, datadir, cfg, name=FIRST_SEGMENT, tag="out"):
    out_dir = make_pg_dir(ws.work / tag)
    target = out_dir / "RECOVERYXLOG"
    rc, out, err = ws.fetch(url, name, target, datadir, "--mode=recovery", config=cfg)
    return rc, out, err, target


def zstd_d(data):
    """Stock zstd's reading of an object's bytes."""
    return subprocess.run(["zstd", "-d", "-q", "-c"], input=data, stdout=subprocess.PIPE, check=True).stdout


def test_push_fetch_round_trip_read_by_boto3_and_zstd(ws, datadir, s3server, s3bucket):
    cfg = s3_config(ws, s3server)
    url = s3server.url(s3bucket, PREFIX)
    ws.init(url, datadir, config=cfg)
    seg = datadir / "pg_wal" / FIRST_SEGMENT

    rc, out, err = ws.push(url, f"pg_wal/{FIRST_SEGMENT}", FIRST_SEGMENT, datadir, config=cfg)
    assert rc == 0, describe(rc, out, err)
    puts = [e for e in s3server.log() if e["method"] == "PUT" and e["path"].endswith(FIRST_SEGMENT)]
    assert puts and puts[-1]["headers"]["if-none-match"] == "*", puts

    key = object_key(s3server, s3bucket, PREFIX, FIRST_SEGMENT)
    stored = s3server.boto3_client().get_object(Bucket=s3bucket, Key=key)["Body"].read()
    assert zstd_d(stored) == seg.read_bytes(), "zstd -d of the object boto3 reads differs from the segment"

    rc, out, err, target = fetch_to(ws, url, datadir, cfg)
    assert rc == 0, describe(rc, out, err)
    assert sha256_file(target) == sha256_file(seg)

    # Pushed again, same content: accepted without a second object.
    rc, out, err = ws.push(url, f"pg_wal/{FIRST_SEGMENT}", FIRST_SEGMENT, datadir, config=cfg)
    assert rc == 0, describe(rc, out, err)
    keys = [o["Key"] for o in s3server.boto3_client().list_objects_v2(Bucket=s3bucket)["Contents"]]
    assert all(k.startswith(PREFIX + "/") for k in keys), keys
    assert sum(1 for k in keys if FIRST_SEGMENT in k) == 1, keys

    # A segment never pushed: the repository is healthy, so "not found" (1), quietly.
    rc, out, err, _ = fetch_to(ws, url, datadir, cfg, name="000000010000000000000009", tag="out2")
    assert rc == 1, describe(rc, out, err)


def test_wrong_secret_names_the_key_id_never_the_secret(ws, datadir, s3server, s3bucket):
    good = s3_config(ws, s3server, name="good.conf")
    url = s3server.url(s3bucket, PREFIX)
    ws.init(url, datadir, config=good)
    wrong_secret = "WrongSecret" + "x" * 29
    bad = write_config(ws, "bad.conf", f"s3-endpoint = {s3server.endpoint}\ns3-region = {s3server.region}\n"
                       f"s3-uri-style = path\ns3-key = {s3server.key}\ns3-key-secret = {wrong_secret}\n")

    rc, out, err = ws.push(url, f"pg_wal/{FIRST_SEGMENT}", FIRST_SEGMENT, datadir, config=bad)
    assert rc == 1, describe(rc, out, err)
    assert s3server.key in err and "SignatureDoesNotMatch" in err, err
    assert wrong_secret not in err + out and s3server.secret not in err + out

    rc, out, err, target = fetch_to(ws, url, datadir, bad)
    assert rc == 200, describe(rc, out, err)
    assert s3server.key in err and wrong_secret not in err + out
    assert not target.exists()

    # An unknown key id is refused the same way.
    unknown = write_config(ws, "unknown.conf", good.read_text().replace(s3server.key, "AKIAUNKNOWN000000000"))
    rc, out, err = ws.push(url, f"pg_wal/{FIRST_SEGMENT}", FIRST_SEGMENT, datadir, config=unknown)
    assert rc == 1 and "AKIAUNKNOWN000000000" in err and "InvalidAccessKeyId" in err, describe(rc, out, err)


def test_session_token(ws, datadir, s3server, s3bucket):
    cfg = s3_config(ws, s3server, token=True)
    url = s3server.url(s3bucket, PREFIX)
    ws.init(url, datadir, config=cfg)
    rc, out, err = ws.push(url, f"pg_wal/{FIRST_SEGMENT}", FIRST_SEGMENT, datadir, config=cfg)
    assert rc == 0, describe(rc, out, err)
    tokened = [e for e in s3server.log() if e["akid"] == s3server.token_key]
    assert tokened and all(e["status"] in (200, 204, 206, 404) for e in tokened), tokened
    assert s3server.token not in err

    # The same temporary key without its token is refused, and the token is never printed.
    no_token = write_config(ws, "notoken.conf",
                            "".join(line + "\n" for line in cfg.read_text().splitlines()
                                    if not line.startswith("s3-token")))
    rc, out, err, _ = fetch_to(ws, url, datadir, no_token)
    assert rc == 200, describe(rc, out, err)
    assert s3server.token_key in err and s3server.token_secret not in err


def test_credentials_file_with_profile(ws, datadir, s3server, s3bucket):
    base = (f"s3-endpoint = {s3server.endpoint}\ns3-region = {s3server.region}\ns3-uri-style = path\n"
            "s3-profile = walship\n")
    cfg = write_config(ws, "profile.conf", base)
    creds = (f"[default]\naws_access_key_id = AKIADEFAULTDEFAULT00\naws_secret_access_key = nope\n\n"
             f"[walship]\naws_access_key_id = {s3server.key}\naws_secret_access_key = {s3server.secret}\n")
    creds_file = write_pg_file(ws.work / "aws-credentials", creds, 0o600)
    env = {"AWS_SHARED_CREDENTIALS_FILE": str(creds_file)}
    url = s3server.url(s3bucket, PREFIX)

    rc, out, err = run([ws.walship, f"--config={cfg}", "init", f"--repo={url}", f"--pgdata={datadir}"],
                       cwd=ws.work, env=env)
    assert rc == 0, describe(rc, out, err)
    rc, out, err = ws.push(url, f"pg_wal/{FIRST_SEGMENT}", FIRST_SEGMENT, datadir, config=cfg, env=env)
    assert rc == 0, describe(rc, out, err)
    assert {e["akid"] for e in s3server.log() if e["akid"]} == {s3server.key}

    # The same file as ~/.aws/credentials of the user walship runs as.
    home = make_pg_dir(ws.work / "home", 0o700)
    make_pg_dir(home / ".aws", 0o700)
    write_pg_file(home / ".aws" / "credentials", creds, 0o600)
    rc, out, err, target = fetch_to(ws, url, datadir, cfg)
    assert rc == 200, "without HOME pointing at the file there are no credentials\n" + describe(rc, out, err)
    out_dir = make_pg_dir(ws.work / "out-home")
    rc, out, err = ws.fetch(url, FIRST_SEGMENT, out_dir / "RECOVERYXLOG", datadir, "--mode=recovery", config=cfg,
                            env={"HOME": str(home)})
    assert rc == 0, describe(rc, out, err)

    # A profile the file lacks, and a file other users can read, are refused by name.
    missing = write_config(ws, "missing.conf", base.replace("s3-profile = walship", "s3-profile = nosuch"))
    rc, out, err = ws.push(url, f"pg_wal/{FIRST_SEGMENT}", FIRST_SEGMENT, datadir, config=missing, env=env)
    assert rc == 1 and '"nosuch"' in err, describe(rc, out, err)
    os.chmod(creds_file, 0o644)
    rc, out, err = ws.push(url, f"pg_wal/{FIRST_SEGMENT}", FIRST_SEGMENT, datadir, config=cfg, env=env)
    assert rc == 1 and str(creds_file) in err and "chmod" in err, describe(rc, out, err)
    assert s3server.secret not in err


def test_missing_bucket_is_fatal(ws, datadir, s3server, s3bucket):
    cfg = s3_config(ws, s3server)
    url = s3server.url("no-such-bucket-here", PREFIX)
    rc, out, err = ws.push(url, f"pg_wal/{FIRST_SEGMENT}", FIRST_SEGMENT, datadir, config=cfg)
    assert rc == 1, describe(rc, out, err)
    assert "no-such-bucket-here" in err and "does not exist" in err, err
    rc, out, err, _ = fetch_to(ws, url, datadir, cfg)
    assert rc == 200, describe(rc, out, err)
    assert "does not exist" in err


def test_403_for_missing_key_is_fatal_with_listbucket_hint(ws, datadir, s3server, s3bucket):
    cfg = s3_config(ws, s3server)
    url = s3server.url(s3bucket, PREFIX)
    ws.init(url, datadir, config=cfg)
    s3server.deny_list_bucket(True)
    rc, out, err, target = fetch_to(ws, url, datadir, cfg)
    assert rc == 200, "a 403 must never read as \"not found\"\n" + describe(rc, out, err)
    assert "s3:ListBucket" in err and s3server.key in err, err
    assert not target.exists()


def test_faults_are_retried(ws, datadir, s3server, s3bucket):
    cfg = s3_config(ws, s3server)
    url = s3server.url(s3bucket, PREFIX)
    ws.init(url, datadir, config=cfg)
    s3server.clear_log()
    s3server.add_fault(method="PUT", action="status", status=500, code="InternalError", count=2)
    s3server.add_fault(method="PUT", action="status", status=503, code="SlowDown", count=1)
    s3server.add_fault(method="PUT", action="drop", after_bytes=4096, count=1)
    s3server.add_fault(method="GET", path_regex="walship.json", action="drop", count=1)
    rc, out, err = ws.push(url, f"pg_wal/{FIRST_SEGMENT}", FIRST_SEGMENT, datadir, config=cfg)
    assert rc == 0, describe(rc, out, err)
    assert all(f["count"] == 0 for f in s3server.faults()), s3server.faults()
    puts = [e for e in s3server.log() if e["method"] == "PUT"]
    assert len(puts) == 5 and puts[-1]["status"] == 200, puts
    # Every attempt resent the same bytes: the proxy checked each body against its hash.
    assert len({e["headers"]["x-amz-content-sha256"] for e in puts}) == 1

    rc, out, err, target = fetch_to(ws, url, datadir, cfg)
    assert rc == 0, describe(rc, out, err)
    assert sha256_file(target) == sha256_file(datadir / "pg_wal" / FIRST_SEGMENT)


def test_each_attempt_is_signed_by_walship(ws, datadir, s3server, s3bucket):
    """walship signs every request itself (src/store/s3_sign.c), the same way on every libcurl:
    over Host, each x-amz-* header it sends (the session token too) and its conditional headers,
    with the time of each attempt, so that a retry carries a new x-amz-date; and without curl's
    "Expect: 100-continue", so that a body is sent at once."""
    cfg = s3_config(ws, s3server, token=True)
    url = s3server.url(s3bucket, PREFIX)
    ws.init(url, datadir, config=cfg)
    s3server.clear_log()
    # The first PUT waits past the next second, then fails: the retry is signed anew.
    s3server.add_fault(method="PUT", action="delay", delay_ms=1100, count=1)
    s3server.add_fault(method="PUT", action="status", status=500, code="InternalError", count=1)
    rc, out, err = ws.push(url, f"pg_wal/{FIRST_SEGMENT}", FIRST_SEGMENT, datadir, config=cfg)
    assert rc == 0, describe(rc, out, err)
    rc, out, err, target = fetch_to(ws, url, datadir, cfg)
    assert rc == 0, describe(rc, out, err)

    log = s3server.log()
    base = {"host", "x-amz-content-sha256", "x-amz-date", "x-amz-security-token"}
    for e in log:
        # Answered by S3 (not by a fault): the proxy recomputed the signature and took it.
        assert e["fault"] is not None or (e["status"] is not None and e["status"] < 400), e
        assert base <= set(e["signed"]), e
        assert e["headers"]["expect"] is None, e
    puts = [e for e in log if e["method"] == "PUT"]
    assert [e["status"] for e in puts] == [500, 200], puts
    assert all("if-none-match" in e["signed"] for e in puts), puts
    first, retry = (e["headers"]["x-amz-date"] for e in puts)
    assert retry > first, puts


def test_budget_runs_out_then_a_retry_succeeds(ws, datadir, s3server, s3bucket):
    cfg = s3_config(ws, s3server, extra="io-timeout = 3\n")
    url = s3server.url(s3bucket, PREFIX)
    ws.init(url, datadir, config=cfg)
    s3server.add_fault(method="PUT", action="status", status=503, code="SlowDown", count=-1)
    rc, out, err = ws.push(url, f"pg_wal/{FIRST_SEGMENT}", FIRST_SEGMENT, datadir, config=cfg)
    assert rc == 1, describe(rc, out, err)
    assert s3server.endpoint in err and "SlowDown" in err and "io-timeout" in err, err
    tries = [e for e in s3server.log() if e["method"] == "PUT"]
    assert len(tries) >= 3, tries

    s3server.clear_faults()
    rc, out, err = ws.push(url, f"pg_wal/{FIRST_SEGMENT}", FIRST_SEGMENT, datadir, config=cfg)
    assert rc == 0, describe(rc, out, err)


def test_skewed_clock_gives_the_ntp_hint(ws, datadir, s3server, s3bucket):
    cfg = s3_config(ws, s3server)
    url = s3server.url(s3bucket, PREFIX)
    ws.init(url, datadir, config=cfg)
    s3server.add_fault(action="skew", count=-1)
    rc, out, err = ws.push(url, f"pg_wal/{FIRST_SEGMENT}", FIRST_SEGMENT, datadir, config=cfg)
    assert rc == 1, describe(rc, out, err)
    assert "RequestTimeTooSkewed" in err and has_phrase(err, "NTP"), err


def make_random_segment(datadir):
    """Make the 64 MiB segment incompressible past its first page (which push checks)."""
    seg = datadir / "pg_wal" / FIRST_SEGMENT
    size = seg.stat().st_size
    assert size == 64 * MIB
    pg_copy(seg, seg, offset=8192, data=os.urandom(size - 8192))
    return seg


def run_measured(cmd, cwd, rss_file):
    rc, out, err = run([TIME, "-o", rss_file, "-f", "%M", *cmd], cwd=cwd, timeout=300)
    lines = [line for line in open(rss_file).read().splitlines() if line.strip()]
    return rc, out, err, int(lines[-1])


def test_multipart_upload_in_bounded_memory(ws, datadir64, s3server, s3bucket):
    seg = make_random_segment(datadir64)
    cfg = s3_config(ws, s3server, extra="s3-part-size = 5\n")
    url = s3server.url(s3bucket, PREFIX)
    ws.init(url, datadir64, config=cfg)

    # The same push to local disk, for the memory baseline.
    local = ws.work / "local-repo"
    ws.init(local, datadir64)
    push_local = [ws.push_bin, f"--config={ws.config}", f"--repo={local}", f"pg_wal/{FIRST_SEGMENT}", FIRST_SEGMENT]
    rc, out, err, local_rss = run_measured(push_local, datadir64, ws.work / "rss-local")
    assert rc == 0, describe(rc, out, err)

    s3server.clear_log()
    push = [ws.push_bin, f"--config={cfg}", f"--repo={url}", f"pg_wal/{FIRST_SEGMENT}", FIRST_SEGMENT]
    rc, out, err, s3_rss = run_measured(push, datadir64, ws.work / "rss-s3")
    assert rc == 0, describe(rc, out, err)
    print(f"peak RSS KiB: local {local_rss}, S3 with 5 MiB parts {s3_rss}")

    log = s3server.log()
    parts = [e for e in log if e["method"] == "PUT" and "partNumber=" in (e["query"] or "")]
    assert len(parts) >= 12, f"a 64 MiB incompressible segment in 5 MiB parts: {len(parts)} parts"
    assert all(int(e["headers"]["content-length"]) == 5 * MIB for e in parts[:-1])
    complete = [e for e in log if e["method"] == "POST" and "uploadId=" in (e["query"] or "")]
    assert len(complete) == 1 and complete[0]["status"] == 200
    assert complete[0]["headers"]["if-none-match"] == "*"
    assert [u for u in s3server.uploads() if u["bucket"] == s3bucket] == []
    # One part (5 MiB) and a 64 KiB look-ahead, never the 64 MiB object.
    assert s3_rss - local_rss < 16 * 1024, f"push to S3 used {s3_rss} KiB, to local disk {local_rss} KiB"

    key = object_key(s3server, s3bucket, PREFIX, FIRST_SEGMENT)
    stored = s3server.boto3_client().get_object(Bucket=s3bucket, Key=key)["Body"].read()
    assert zstd_d(stored) == seg.read_bytes()
    rc, out, err, target = fetch_to(ws, url, datadir64, cfg)
    assert rc == 0, describe(rc, out, err)
    assert sha256_file(target) == sha256_file(seg)


def test_failed_multipart_leaves_no_upload(ws, datadir64, s3server, s3bucket):
    make_random_segment(datadir64)
    cfg = s3_config(ws, s3server, extra="s3-part-size = 5\n")
    url = s3server.url(s3bucket, PREFIX)
    ws.init(url, datadir64, config=cfg)
    s3server.add_fault(method="PUT", path_regex="partNumber=3&", action="status", status=400,
                       code="InvalidArgument", count=-1)
    rc, out, err = ws.push(url, f"pg_wal/{FIRST_SEGMENT}", FIRST_SEGMENT, datadir64, config=cfg)
    assert rc == 1, describe(rc, out, err)
    assert "InvalidArgument" in err
    log = s3server.log()
    assert any(e["method"] == "DELETE" and "uploadId=" in (e["query"] or "") for e in log), log
    assert [u for u in s3server.uploads() if u["bucket"] == s3bucket] == []
    listed = s3server.boto3_client().list_objects_v2(Bucket=s3bucket).get("Contents", [])
    assert not any(FIRST_SEGMENT in o["Key"] for o in listed)


def test_plain_http_only_on_loopback(ws, datadir, s3server, s3bucket):
    cfg = write_config(ws, "remote.conf", f"s3-endpoint = http://192.0.2.1:9000\ns3-uri-style = path\n"
                       f"s3-key = {s3server.key}\ns3-key-secret = {s3server.secret}\nio-timeout = 1\n")
    url = s3server.url(s3bucket, PREFIX)
    rc, out, err = ws.push(url, f"pg_wal/{FIRST_SEGMENT}", FIRST_SEGMENT, datadir, config=cfg)
    assert rc == 1, describe(rc, out, err)
    assert "s3-allow-http" in err and "192.0.2.1" in err, err

    # Allowed explicitly, it is tried (and here, on an unreachable address, fails as transient).
    allowed = write_config(ws, "allowed.conf", cfg.read_text() + "s3-allow-http = on\n")
    rc, out, err = ws.push(url, f"pg_wal/{FIRST_SEGMENT}", FIRST_SEGMENT, datadir, config=allowed, timeout=60)
    assert rc == 1, describe(rc, out, err)
    assert "s3-allow-http" not in err and "192.0.2.1" in err, err


def test_server_killed_mid_upload(ws, datadir64, s3server, s3bucket):
    """The S3 server dies while a 64 MiB segment goes up in parts: push exits 1,
    fetch answers 200 (never "not found") while it is down, nothing partial is
    visible, and once the server is back the archiver's retry succeeds."""
    import time

    from pgcluster import popen, wait_for

    seg = make_random_segment(datadir64)
    cfg = s3_config(ws, s3server, extra="s3-part-size = 5\nio-timeout = 5\n")
    url = s3server.url(s3bucket, PREFIX)
    ws.init(url, datadir64, config=cfg)
    s3server.clear_log()
    # Slow parts, so the kill lands in the middle of the upload.
    s3server.add_fault(method="PUT", path_regex="partNumber=", action="delay", delay_ms=300, count=-1)
    push = popen([ws.push_bin, f"--config={cfg}", f"--repo={url}", f"pg_wal/{FIRST_SEGMENT}", FIRST_SEGMENT],
                 cwd=datadir64, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: push.poll() is not None
                 or sum(1 for e in s3server.log() if "partNumber=" in (e["query"] or "")) >= 3, 60,
                 lambda: f"the multipart upload did not start: {s3server.log()[-3:]}")
        assert push.poll() is None, describe(push.returncode, *push.communicate())
        s3server.kill()
        out, err = push.communicate(timeout=120)
        assert push.returncode == 1, describe(push.returncode, out, err)
        assert has_phrase(err, "could not connect", "connection", "127.0.0.1"), err

        rc, out, err, target = fetch_to(ws, url, datadir64, cfg, tag="down")
        assert rc == 200, describe(rc, out, err)
        assert not target.exists()
    finally:
        if push.poll() is None:
            push.kill()
            push.wait()
        if not s3server.alive():
            s3server.restart()
        s3server.clear_faults()

    # Nothing of the interrupted push is an object.
    keys = [o["Key"] for o in s3server.boto3_client().list_objects_v2(Bucket=s3bucket).get("Contents", [])]
    assert not any(FIRST_SEGMENT in k for k in keys), keys
    rc, out, err, _ = fetch_to(ws, url, datadir64, cfg, tag="missing")
    assert rc == 1, describe(rc, out, err)

    time.sleep(0.1)
    rc, out, err = ws.push(url, f"pg_wal/{FIRST_SEGMENT}", FIRST_SEGMENT, datadir64, config=cfg)
    assert rc == 0, describe(rc, out, err)
    rc, out, err, target = fetch_to(ws, url, datadir64, cfg, tag="back")
    assert rc == 0, describe(rc, out, err)
    assert sha256_file(target) == sha256_file(seg)


def test_retries_are_reported_while_s3_is_down(ws, datadir, s3server, s3bucket):
    """An outage is said at the first retry, every 10 s while retried and when given up; a push that
    needed retries says so when it gets through."""
    cfg = s3_config(ws, s3server)
    url = s3server.url(s3bucket, PREFIX)
    ws.init(url, datadir, config=cfg)
    down = f"http://127.0.0.1:{free_port()}"
    text = s3server.config_text().replace(s3server.endpoint, down) + "io-timeout = 21\n"
    down_cfg = write_config(ws, "down.conf", text)
    rc, out, err = ws.push(url, f"pg_wal/{FIRST_SEGMENT}", FIRST_SEGMENT, datadir, config=down_cfg)
    assert rc == 1, describe(rc, out, err)
    lines = err.splitlines()
    first = [i for i, line in enumerate(lines) if line.startswith("walship-push: warning: could not ")]
    assert first and f'(S3 at "{down}"): ' in lines[first[0]], err
    assert lines[first[0]].endswith("; retrying for up to 21 s (io-timeout)"), err
    assert lines[first[0] + 1].startswith("walship-push: hint: "), err
    still = [line for line in lines if line.startswith("walship-push: warning: still retrying to ")]
    assert 1 <= len(still) <= 2 and all(f'(S3 at "{down}"): failed ' in line for line in still), err
    assert re.search(r"^walship-push: warning: gave up trying to .* after \d+ retries in [12]\d s \(io-timeout is 21 s\)",
                     err, re.M), err
    assert re.search(r"^walship-push: error: could not .*S3 at \"" + re.escape(down), err, re.M), err
    assert "stored" not in out + err and "archived" not in out + err, err
    keys = [o["Key"] for o in s3server.boto3_client().list_objects_v2(Bucket=s3bucket).get("Contents", [])]
    assert not any(FIRST_SEGMENT in k for k in keys), keys

    # Two refused PUTs, then S3 takes it: one warning, and the line saying it got through.
    s3server.add_fault(method="PUT", action="status", status=503, code="SlowDown", count=2)
    rc, out, err = ws.push(url, f"pg_wal/{FIRST_SEGMENT}", FIRST_SEGMENT, datadir, config=cfg)
    assert rc == 0, describe(rc, out, err)
    assert err.count("walship-push: warning: could not write ") == 1 and "HTTP 503 SlowDown" in err, err
    assert re.search(r"^walship-push: warning: could write .* after 2 retries in [\d.]+ s: S3 at \"" +
                     re.escape(s3server.endpoint) + r"\" answers again$", err, re.M), err
    assert "still retrying" not in err and "gave up" not in err, err
