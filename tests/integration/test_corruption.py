"""Corruption sweep: a damaged object is never restored and never "not found".

A stored segment object (1 MiB segments, plain and encrypted repositories) is
damaged every way a disk, a copy or a bug could: one bit flipped at every
header and trailer byte and at a stride through the payload, truncated at many
lengths, bytes appended, the object written twice in a row.  Every case
answers 200 from walship-fetch in recovery mode with a message that names the
object, and leaves neither %p nor a temporary file.  A few of the same cases
on SFTP and S3.  walship-fetch is called directly, about 450 times.
"""

import os
import struct

import pytest

from pgcluster import RepoView, describe, make_pg_dir, write_pg_file
from test_encryption import encrypted_repo
from test_sftp import no_sanitizer_report

ABORT = 200
MIB = 1 << 20
HEADER = {False: 28, True: 60}  # object.h: OBJ_HEADER_SIZE, OBJ_HEADER_SIZE_ENCRYPTED
TRAILER = 60                    # OBJ_TRAILER_SIZE
PAYLOAD_FLIPS = 64
TRUNCATIONS = 40


def written_segment(datadir):
    """The name of a segment of datadir (1 MiB segments) that initdb wrote: its first page's
    address matches its name (initdb's later segments are recycled, with older addresses)."""
    for p in sorted((datadir / "pg_wal").iterdir()):
        if p.is_file() and len(p.name) == 24:
            with open(p, "rb") as f:
                head = f.read(16)
            if struct.unpack("<Q", head[8:16])[0] == int(p.name[8:16], 16) * 4096 * MIB + \
                    int(p.name[16:], 16) * MIB:
                return p.name
    raise AssertionError(f"no segment written by initdb in {datadir}/pg_wal")


def flip(data, pos):
    """data with one bit of byte pos inverted (a different bit at each position)."""
    out = bytearray(data)
    out[pos] ^= 1 << (pos % 8)
    return bytes(out)


def cases(data, encrypted):
    """(label, damaged object) for every kind of damage the sweep tries."""
    n, head = len(data), HEADER[encrypted]
    assert n > head + TRAILER + PAYLOAD_FLIPS, f"object of {n} bytes is too small for the sweep"
    for pos in range(head):
        yield f"header bit at {pos}", flip(data, pos)
    for pos in range(n - TRAILER, n):
        yield f"trailer bit at {pos}", flip(data, pos)
    payload = n - TRAILER - head
    for i in range(PAYLOAD_FLIPS):
        pos = head + i * payload // PAYLOAD_FLIPS + i % 7
        yield f"payload bit at {pos}", flip(data, pos)
    lengths = {0, 1, head - 1, head, head + 1, n - TRAILER - 1, n - TRAILER, n - TRAILER + 1, n - 1}
    lengths.update(head + i * payload // TRUNCATIONS for i in range(TRUNCATIONS))
    for length in sorted(lengths):
        yield f"truncated to {length} bytes", data[:length]
    yield "one byte appended", data + b"\0"
    yield "a second trailer appended", data + data[-TRAILER:]
    yield "4 KiB appended", data + os.urandom(4096)
    yield "doubled", data + data


def object_key(epoch, name):
    return f"{epoch}/wal/{name[:16]}/{name}"


def fetch_damaged(ws, url, config, datadir, key, out_dir, label):
    """One fetch in recovery mode of the damaged object: 200, the object named, nothing left."""
    target = out_dir / "RECOVERYXLOG"
    name = key.rsplit("/", 1)[1]
    rc, out, err = no_sanitizer_report(ws.fetch(url, name, target, datadir, "--mode=recovery", config=config))
    assert rc == ABORT, f"{label}: a damaged object must answer {ABORT}\n" + describe(rc, out, err)
    assert "walship-fetch: error:" in err and f'object "{key}"' in err, \
        f"{label}: the message must name the object \"{key}\"\n" + describe(rc, out, err)
    left = sorted(os.listdir(out_dir))
    assert left == [], f"{label}: files left where %p was to be written: {left}"


def stocked(ws, url, config, datadir1m):
    """Push the segment initdb wrote; its name."""
    name = written_segment(datadir1m)
    rc, out, err = ws.push(url, f"pg_wal/{name}", name, datadir1m, config=config)
    assert rc == 0, "setup: pushing the segment failed\n" + describe(rc, out, err)
    return name


def write_like(path, data):
    """Replace a file's content, keeping its owner and mode."""
    st = os.stat(path)
    with open(path, "wb") as f:
        f.write(data)
    os.chown(path, st.st_uid, st.st_gid)
    os.chmod(path, st.st_mode & 0o7777)


@pytest.fixture
def out_dir(work):
    return make_pg_dir(work / "out", 0o700)


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_local_sweep(ws, work, datadir1m, out_dir, encrypted):
    if encrypted:
        root = encrypted_repo(ws, work, datadir1m)
    else:
        root = ws.init(work / "repo", datadir1m).root
    name = stocked(ws, root, None, datadir1m)
    view = RepoView(root)
    obj, key = view.key_path(name), object_key(view.epoch, name)
    good = obj.read_bytes()
    count = 0
    for label, data in cases(good, encrypted):
        write_like(obj, data)
        fetch_damaged(ws, root, None, datadir1m, key, out_dir, label)
        count += 1
    assert count > 200, count
    # The intact object still comes back whole.
    write_like(obj, good)
    rc, out, err = ws.fetch(root, name, out_dir / "RECOVERYXLOG", datadir1m, "--mode=recovery")
    assert rc == 0, describe(rc, out, err)
    assert (out_dir / "RECOVERYXLOG").read_bytes() == (datadir1m / "pg_wal" / name).read_bytes()


def few_cases(data):
    n = len(data)
    return [("header bit at 5", flip(data, 5)), (f"payload bit at {n // 2}", flip(data, n // 2)),
            (f"trailer bit at {n - 1}", flip(data, n - 1)), (f"truncated to {n // 2}", data[:n // 2]),
            ("doubled", data + data)]


def test_sftp_sweep(ws, work, datadir1m, out_dir, sshd):
    root = work / "repo"
    url = sshd.url(str(root))
    config = write_pg_file(work / "sftp.conf", sshd.config_text(), 0o600)
    ws.init(url, datadir1m, config=config)
    name = stocked(ws, url, config, datadir1m)
    view = RepoView(root)
    obj = view.key_path(name)
    good = obj.read_bytes()
    for label, data in few_cases(good):
        write_like(obj, data)
        fetch_damaged(ws, url, config, datadir1m, object_key(view.epoch, name), out_dir, f"SFTP, {label}")


def test_s3_sweep(ws, work, datadir1m, out_dir, s3server, s3bucket):
    url = s3server.url(s3bucket, "repo")
    config = write_pg_file(work / "s3.conf", s3server.config_text(), 0o600)
    ws.init(url, datadir1m, config=config)
    name = stocked(ws, url, config, datadir1m)
    c = s3server.boto3_client()
    keys = [o["Key"] for o in c.list_objects_v2(Bucket=s3bucket, Prefix="repo/")["Contents"]]
    key = next(k for k in keys if k.endswith("/" + name))
    good = c.get_object(Bucket=s3bucket, Key=key)["Body"].read()
    for label, data in few_cases(good):
        c.put_object(Bucket=s3bucket, Key=key, Body=data)
        fetch_damaged(ws, url, config, datadir1m, key[len("repo/"):], out_dir, f"S3, {label}")
