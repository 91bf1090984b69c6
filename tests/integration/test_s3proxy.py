"""The S3 test server itself: s3rver checks nothing, so these tests prove that
the proxy in front of it does (signatures, tokens, clock skew, payload hashes,
If-None-Match) and that its faults, modes and restarts behave as walship's S3
tests rely on.  Requests are made with boto3 and with a small SigV4 signer
written here, independent of the proxy's (AWS's JS) signer.
"""

import datetime
import hashlib
import hmac
import http.client
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError


EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


# ----------------------------------------------------------------------
# a hand-made SigV4 request


def _hmac(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signed_request(server, method, path, query=(), body=b"", *, key=None, secret=None, token=None,
                   when=None, payload_hash=None, extra_headers=None, sign=True, tamper=None):
    """Sends one request signed by hand; returns (status, headers, body bytes).

    path is sent as given (already escaped); query is a list of (name, value).
    payload_hash defaults to the body's real SHA-256; extra_headers are signed;
    tamper(target, headers) -> target may change the request after signing."""
    key = key or server.key
    secret = secret or server.secret
    when = when or datetime.datetime.now(datetime.timezone.utc)
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    if payload_hash is None:
        payload_hash = hashlib.sha256(body).hexdigest()
    headers = {"host": f"127.0.0.1:{server.port}", "x-amz-date": amz_date,
               "x-amz-content-sha256": payload_hash}
    if token is not None:
        headers["x-amz-security-token"] = token
    for k, v in (extra_headers or {}).items():
        headers[k.lower()] = v
    q = lambda s: urllib.parse.quote(s, safe="-_.~")  # noqa: E731
    canonical_query = "&".join(f"{q(k)}={q(v)}" for k, v in sorted(query))
    if sign:
        names = sorted(headers)
        canonical = "\n".join([
            method, path, canonical_query,
            "".join(f"{n}:{headers[n].strip()}\n" for n in names),
            ";".join(names), payload_hash])
        scope = f"{amz_date[:8]}/{server.region}/s3/aws4_request"
        to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                             hashlib.sha256(canonical.encode()).hexdigest()])
        k = _hmac(("AWS4" + secret).encode(), amz_date[:8])
        for part in (server.region, "s3", "aws4_request"):
            k = _hmac(k, part)
        signature = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
        headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={key}/{scope}, "
                                    f"SignedHeaders={';'.join(names)}, Signature={signature}")
    target = path + ("?" + canonical_query if canonical_query else "")
    if tamper is not None:
        target = tamper(target, headers)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request(method, target,
                     body=body if body or method in ("PUT", "POST") else None, headers=headers)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def error_code(body):
    m = re.search(rb"<Code>([^<]*)</Code>", body)
    return m.group(1).decode() if m else None


def client_error(exc_info):
    err = exc_info.value.response
    return err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Code"]


def with_header(client, operation, name, value):
    """Makes client send (and sign) one more header on operation: boto3 1.26 has no IfNoneMatch."""
    def add(request, **kwargs):
        request.headers[name] = value
    client.meta.events.register(f"before-sign.s3.{operation}", add)
    return client


def get_body(client, bucket, key):
    return client.get_object(Bucket=bucket, Key=key)["Body"].read()


# ----------------------------------------------------------------------
# what works


def test_boto3_roundtrip_and_paging(s3server, s3bucket):
    c = s3server.boto3_client()
    c.put_object(Bucket=s3bucket, Key="dir/a b+c%d", Body=b"hello")
    assert get_body(c, s3bucket, "dir/a b+c%d") == b"hello"
    head = c.head_object(Bucket=s3bucket, Key="dir/a b+c%d")
    assert head["ContentLength"] == 5
    assert c.get_object(Bucket=s3bucket, Key="dir/a b+c%d", Range="bytes=1-3")["Body"].read() == b"ell"

    keys = [f"many/{i:05d}" for i in range(1010)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: c.put_object(Bucket=s3bucket, Key=k, Body=k.encode()), keys))
    seen, pages, token = [], 0, None
    while True:
        kw = {"Bucket": s3bucket, "Prefix": "many/", "MaxKeys": 97}
        if token:
            kw["ContinuationToken"] = token
        r = c.list_objects_v2(**kw)
        pages += 1
        seen += [o["Key"] for o in r.get("Contents", [])]
        if not r["IsTruncated"]:
            break
        token = r["NextContinuationToken"]
    assert seen == keys
    assert pages == 11
    # The default page is 1000 keys and says so.
    r = c.list_objects_v2(Bucket=s3bucket, Prefix="many/")
    assert r["KeyCount"] == 1000 and r["IsTruncated"]

    c.delete_object(Bucket=s3bucket, Key="dir/a b+c%d")
    with pytest.raises(ClientError) as e:
        c.head_object(Bucket=s3bucket, Key="dir/a b+c%d")
    assert client_error(e)[0] == 404
    with pytest.raises(ClientError) as e:
        c.get_object(Bucket=s3bucket, Key="dir/a b+c%d")
    assert client_error(e) == (404, "NoSuchKey")


def test_hand_signer_is_accepted(s3server, s3bucket):
    # The positive control for the hand-made requests below.
    status, _, body = signed_request(s3server, "PUT", f"/{s3bucket}/hand/x%20y", body=b"by hand")
    assert status == 200, body
    status, _, body = signed_request(s3server, "GET", f"/{s3bucket}/hand/x%20y")
    assert (status, body) == (200, b"by hand")
    status, _, body = signed_request(s3server, "GET", f"/{s3bucket}",
                                     query=[("list-type", "2"), ("prefix", "hand/")])
    assert status == 200 and b"<Key>hand/x y</Key>" in body


def test_connection_reuse_is_logged(s3server, s3bucket):
    c = s3server.boto3_client()
    for i in range(3):
        c.put_object(Bucket=s3bucket, Key=f"k{i}", Body=b"x")
    entries = [e for e in s3server.log() if e["method"] == "PUT"]
    assert len(entries) == 3
    assert len({e["conn"] for e in entries}) == 1
    assert entries[0]["headers"]["x-amz-content-sha256"] == hashlib.sha256(b"x").hexdigest()
    assert entries[0]["headers"]["content-length"] == "1"
    signed_request(s3server, "GET", f"/{s3bucket}/k0")
    assert s3server.log()[-1]["conn"] != entries[0]["conn"]


# ----------------------------------------------------------------------
# what is refused


def test_wrong_secret_is_refused(s3server, s3bucket):
    c = s3server.boto3_client(secret=s3server.secret[:-1] + ("A" if s3server.secret[-1] != "A" else "B"))
    with pytest.raises(ClientError) as e:
        c.put_object(Bucket=s3bucket, Key="k", Body=b"x")
    assert client_error(e) == (403, "SignatureDoesNotMatch")
    with pytest.raises(ClientError) as e:
        s3server.boto3_client().head_object(Bucket=s3bucket, Key="k")
    assert client_error(e)[0] == 404


def test_unknown_key_is_refused(s3server, s3bucket):
    c = s3server.boto3_client(key="AKIAUNKNOWNUNKNOWN00", secret=s3server.secret)
    with pytest.raises(ClientError) as e:
        c.list_objects_v2(Bucket=s3bucket)
    assert client_error(e) == (403, "InvalidAccessKeyId")


def test_tampered_request_is_refused(s3server, s3bucket):
    def other_key(target, headers):
        return target.replace("/orig", "/other")

    def other_meta(target, headers):
        headers["x-amz-meta-a"] = "2"
        return target

    def other_query(target, headers):
        return target.replace("prefix=a", "prefix=b")

    status, _, resp = signed_request(s3server, "PUT", f"/{s3bucket}/orig", body=b"x", tamper=other_key)
    assert (status, error_code(resp)) == (403, "SignatureDoesNotMatch")
    status, _, resp = signed_request(s3server, "PUT", f"/{s3bucket}/orig", body=b"x",
                                     extra_headers={"x-amz-meta-a": "1"}, tamper=other_meta)
    assert (status, error_code(resp)) == (403, "SignatureDoesNotMatch")
    status, _, resp = signed_request(s3server, "GET", f"/{s3bucket}", query=[("list-type", "2"), ("prefix", "a")],
                                     tamper=other_query)
    assert (status, error_code(resp)) == (403, "SignatureDoesNotMatch")
    # The controls: the same requests untouched.
    status, _, resp = signed_request(s3server, "PUT", f"/{s3bucket}/orig", body=b"x",
                                     extra_headers={"x-amz-meta-a": "1"})
    assert status == 200, resp
    status, _, resp = signed_request(s3server, "GET", f"/{s3bucket}", query=[("list-type", "2"), ("prefix", "a")])
    assert status == 200, resp
    status, _, _ = signed_request(s3server, "HEAD", f"/{s3bucket}/other")
    assert status == 404


def test_path_is_canonicalized_as_s3_does(s3server, s3bucket):
    # boto3 escapes ':' and '+' in keys; a client signing them raw is refused, as by S3.
    c = s3server.boto3_client()
    c.put_object(Bucket=s3bucket, Key="a:b+c", Body=b"x")
    status, _, body = signed_request(s3server, "GET", f"/{s3bucket}/a%3Ab%2Bc")
    assert (status, body) == (200, b"x")
    status, _, resp = signed_request(s3server, "GET", f"/{s3bucket}/a:b+c")
    assert (status, error_code(resp)) == (403, "SignatureDoesNotMatch")


def test_payload_hash_mismatch_is_refused(s3server, s3bucket):
    body = b"the real content"
    status, _, resp = signed_request(s3server, "PUT", f"/{s3bucket}/k", body=body,
                                     payload_hash=hashlib.sha256(b"something else").hexdigest())
    assert (status, error_code(resp)) == (400, "XAmzContentSHA256Mismatch")
    # The empty-body hash on a PUT with a body (what curl would sign without our header).
    status, _, resp = signed_request(s3server, "PUT", f"/{s3bucket}/k", body=body, payload_hash=EMPTY_SHA256)
    assert (status, error_code(resp)) == (400, "XAmzContentSHA256Mismatch")
    # A body changed after boto3 signed it.
    c = s3server.boto3_client()

    def tamper(request, **kwargs):
        data = request.body.read() if hasattr(request.body, "read") else bytes(request.body)
        assert data == body
        request.body = b"X" + data[1:]
    c.meta.events.register("before-send.s3.PutObject", tamper)
    with pytest.raises(ClientError) as e:
        c.put_object(Bucket=s3bucket, Key="k", Body=body)
    assert client_error(e) == (400, "XAmzContentSHA256Mismatch")
    with pytest.raises(ClientError) as e:
        s3server.boto3_client().head_object(Bucket=s3bucket, Key="k")
    assert client_error(e)[0] == 404


def test_unsigned_and_unsigned_payload_are_refused(s3server, s3bucket):
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"{s3server.endpoint}/{s3bucket}?list-type=2", timeout=30)
    assert e.value.code == 403
    assert error_code(e.value.read()) == "AccessDenied"
    assert e.value.headers["Content-Type"] == "application/xml"
    status, _, resp = signed_request(s3server, "PUT", f"/{s3bucket}/k", body=b"x", sign=False)
    assert (status, error_code(resp)) == (403, "AccessDenied")
    status, _, resp = signed_request(s3server, "PUT", f"/{s3bucket}/k", body=b"x",
                                     payload_hash="UNSIGNED-PAYLOAD")
    assert (status, error_code(resp)) == (400, "UnsignedPayloadRefused")
    # Presigned URLs are not accepted either.
    url = s3server.boto3_client().generate_presigned_url("get_object", Params={"Bucket": s3bucket, "Key": "k"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url, timeout=30)
    assert e.value.code == 403
    with pytest.raises(ClientError) as e:
        s3server.boto3_client().head_object(Bucket=s3bucket, Key="k")
    assert client_error(e)[0] == 404


def test_skewed_clock_is_refused(s3server, s3bucket):
    now = datetime.datetime.now(datetime.timezone.utc)
    for delta in (-20, 20):
        status, _, resp = signed_request(s3server, "GET", f"/{s3bucket}",
                                         when=now + datetime.timedelta(minutes=delta))
        assert (status, error_code(resp)) == (403, "RequestTimeTooSkewed")
    status, _, resp = signed_request(s3server, "GET", f"/{s3bucket}", when=now - datetime.timedelta(minutes=10))
    assert status == 200, resp


def test_wrong_region_is_refused(s3server, s3bucket):
    import boto3
    from botocore.config import Config
    c = boto3.client("s3", endpoint_url=s3server.endpoint, region_name="eu-west-3",
                     aws_access_key_id=s3server.key, aws_secret_access_key=s3server.secret,
                     config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                                   retries={"total_max_attempts": 1}))
    # botocore follows the <Region> of the error and signs again, as it does with AWS.
    c.list_objects_v2(Bucket=s3bucket)
    assert [(e["status"], e["code"]) for e in s3server.log()] == [(400, "AuthorizationHeaderMalformed"),
                                                                   (200, None)]


def test_session_token_is_required(s3server, s3bucket):
    k, s, t = s3server.token_key, s3server.token_secret, s3server.token
    c = s3server.boto3_client(k, s)
    with pytest.raises(ClientError) as e:
        c.put_object(Bucket=s3bucket, Key="k", Body=b"x")
    assert client_error(e) == (403, "InvalidToken")
    wrong = t[:-3] + ("y" if t[-3] == "x" else "x") + "=="  # always differs from t
    c = s3server.boto3_client(k, s, wrong)
    with pytest.raises(ClientError) as e:
        c.put_object(Bucket=s3bucket, Key="k", Body=b"x")
    assert client_error(e) == (403, "InvalidToken")
    # The token must be signed, not just sent.
    status, _, resp = signed_request(s3server, "GET", f"/{s3bucket}", key=k, secret=s)
    assert (status, error_code(resp)) == (403, "InvalidToken")
    status, _, resp = signed_request(s3server, "GET", f"/{s3bucket}", key=k, secret=s, token=t)
    assert status == 200, resp
    # A token sent with the permanent credential is refused as well.
    status, _, resp = signed_request(s3server, "GET", f"/{s3bucket}", token=t)
    assert (status, error_code(resp)) == (403, "InvalidToken")
    c = s3server.boto3_client(k, s, t)
    c.put_object(Bucket=s3bucket, Key="k", Body=b"x")
    assert get_body(c, s3bucket, "k") == b"x"


def test_put_without_content_length_is_refused(s3server, s3bucket):
    conn = http.client.HTTPConnection("127.0.0.1", s3server.port, timeout=30)
    amz_date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    # Chunked upload signed by hand: the signature is right, only the length is missing.
    body = b"chunked"
    h = hashlib.sha256(body).hexdigest()
    headers = {"host": f"127.0.0.1:{s3server.port}", "x-amz-date": amz_date, "x-amz-content-sha256": h}
    names = sorted(headers)
    canonical = "\n".join(["PUT", f"/{s3bucket}/k", "", "".join(f"{n}:{headers[n]}\n" for n in names),
                           ";".join(names), h])
    scope = f"{amz_date[:8]}/{s3server.region}/s3/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    k = _hmac(("AWS4" + s3server.secret).encode(), amz_date[:8])
    for part in (s3server.region, "s3", "aws4_request"):
        k = _hmac(k, part)
    sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={s3server.key}/{scope}, "
                                f"SignedHeaders={';'.join(names)}, Signature={sig}")
    conn.request("PUT", f"/{s3bucket}/k", body=iter([body]), headers=headers, encode_chunked=True)
    r = conn.getresponse()
    assert (r.status, error_code(r.read())) == (411, "MissingContentLength")
    conn.close()


# ----------------------------------------------------------------------
# If-None-Match: *


def test_if_none_match_put(s3server, s3bucket):
    c = with_header(s3server.boto3_client(), "PutObject", "If-None-Match", "*")
    c.put_object(Bucket=s3bucket, Key="once", Body=b"first")
    with pytest.raises(ClientError) as e:
        c.put_object(Bucket=s3bucket, Key="once", Body=b"second")
    assert client_error(e) == (412, "PreconditionFailed")
    assert get_body(c, s3bucket, "once") == b"first"
    assert [e["headers"]["if-none-match"] for e in s3server.log() if e["method"] == "PUT"] == ["*", "*"]
    # Without the condition, a PUT overwrites.
    s3server.boto3_client().put_object(Bucket=s3bucket, Key="once", Body=b"third")
    assert get_body(c, s3bucket, "once") == b"third"


def test_if_none_match_concurrent_writers(s3server, s3bucket):
    results = {}
    barrier = threading.Barrier(8)

    def writer(i):
        c = with_header(s3server.boto3_client(), "PutObject", "If-None-Match", "*")
        body = f"writer {i} ".encode() * (1000 + i)
        barrier.wait()
        try:
            c.put_object(Bucket=s3bucket, Key="race", Body=body)
            results[i] = (200, body)
        except ClientError as e:
            results[i] = (client_error(type("E", (), {"value": e})), body)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [i for i, (st, _) in results.items() if st == 200]
    assert len(winners) == 1, results.keys()
    assert all(st == (412, "PreconditionFailed") for i, (st, _) in results.items() if i not in winners)
    assert get_body(s3server.boto3_client(), s3bucket, "race") == results[winners[0]][1]


def _multipart(client, bucket, key, parts):
    up = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    done = []
    for n, data in enumerate(parts, 1):
        r = client.upload_part(Bucket=bucket, Key=key, UploadId=up, PartNumber=n, Body=data)
        done.append({"PartNumber": n, "ETag": r["ETag"]})
    return up, done


def test_if_none_match_multipart_complete(s3server, s3bucket):
    c = with_header(s3server.boto3_client(), "CompleteMultipartUpload", "If-None-Match", "*")
    parts = [b"a" * (5 << 20), b"tail"]
    up, done = _multipart(c, s3bucket, "mp", parts)
    assert [u["uploadId"] for u in s3server.uploads() if u["bucket"] == s3bucket] == [up]
    c.complete_multipart_upload(Bucket=s3bucket, Key="mp", UploadId=up, MultipartUpload={"Parts": done})
    assert get_body(c, s3bucket, "mp") == b"".join(parts)
    assert [u for u in s3server.uploads() if u["bucket"] == s3bucket] == []

    up, done = _multipart(c, s3bucket, "mp", [b"other"])
    with pytest.raises(ClientError) as e:
        c.complete_multipart_upload(Bucket=s3bucket, Key="mp", UploadId=up, MultipartUpload={"Parts": done})
    assert client_error(e) == (412, "PreconditionFailed")
    assert get_body(c, s3bucket, "mp") == b"".join(parts)
    # The refused upload is still there to abort, as on S3.
    assert [u["uploadId"] for u in s3server.uploads() if u["bucket"] == s3bucket] == [up]
    c.abort_multipart_upload(Bucket=s3bucket, Key="mp", UploadId=up)
    assert [u for u in s3server.uploads() if u["bucket"] == s3bucket] == []
    with pytest.raises(ClientError) as e:
        c.abort_multipart_upload(Bucket=s3bucket, Key="mp", UploadId=up)
    assert client_error(e) == (404, "NoSuchUpload")
    with pytest.raises(ClientError) as e:
        c.upload_part(Bucket=s3bucket, Key="mp", UploadId=up, PartNumber=1, Body=b"x")
    assert client_error(e) == (404, "NoSuchUpload")


# ----------------------------------------------------------------------
# faults, modes, restarts


def test_fault_status_fires_count_times(s3server, s3bucket):
    c = s3server.boto3_client()
    c.put_object(Bucket=s3bucket, Key="k", Body=b"x")
    s3server.add_fault(method="GET", path_regex=r"/k$", action="status", status=500, count=2)
    for _ in range(2):
        with pytest.raises(ClientError) as e:
            c.get_object(Bucket=s3bucket, Key="k")
        assert client_error(e) == (500, "InternalError")
    assert get_body(c, s3bucket, "k") == b"x"
    assert s3server.faults()[0]["fired"] == 2
    s3server.add_fault(action="status", status=503, code="SlowDown", count=-1, method="PUT")
    for _ in range(3):
        with pytest.raises(ClientError) as e:
            c.put_object(Bucket=s3bucket, Key="k", Body=b"y")
        assert client_error(e) == (503, "SlowDown")
    s3server.clear_faults()
    c.put_object(Bucket=s3bucket, Key="k", Body=b"y")
    assert get_body(c, s3bucket, "k") == b"y"
    assert [e["status"] for e in s3server.log() if e["method"] == "GET"] == [500, 500, 200, 200]


def test_fault_status_with_a_foreign_body(s3server, s3bucket):
    """A 404 that does not come from S3: a page of its own, no S3 error document, no request id."""
    page = "<html><body><h1>404 Not Found</h1>nginx</body></html>"
    s3server.add_fault(method="GET", path_regex=r"/k$", action="status", status=404, body=page)
    status, headers, body = signed_request(s3server, "GET", f"/{s3bucket}/k")
    assert status == 404 and body.decode() == page
    assert headers.get("content-type") == "text/html" and "x-amz-request-id" not in headers, headers
    s3server.add_fault(method="HEAD", path_regex=r"/k$", action="status", status=404, body=page)
    status, headers, body = signed_request(s3server, "HEAD", f"/{s3bucket}/k")
    assert status == 404 and body == b"" and "x-amz-request-id" not in headers, headers
    assert [e["fault"] for e in s3server.log()] == ["status", "status"]


def test_fault_drop_closes_connection(s3server, s3bucket):
    s3server.add_fault(method="GET", action="drop")
    conn = http.client.HTTPConnection("127.0.0.1", s3server.port, timeout=30)
    conn.request("GET", f"/{s3bucket}/k")
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        conn.getresponse()
    conn.close()

    # Mid-upload: the server reads 64 KiB of the body, then the connection dies.
    s3server.add_fault(method="PUT", action="drop", after_bytes=65536)
    body = b"z" * (4 << 20)
    with pytest.raises((ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected)):
        signed_request(s3server, "PUT", f"/{s3bucket}/big", body=body)
    entry = [e for e in s3server.log() if e["method"] == "PUT"][-1]
    assert entry["dropped"] and entry["status"] is None
    status, _, _ = signed_request(s3server, "HEAD", f"/{s3bucket}/big")
    assert status == 404
    status, _, _ = signed_request(s3server, "PUT", f"/{s3bucket}/big", body=body)
    assert status == 200


def test_fault_delay_and_skew(s3server, s3bucket):
    s3server.add_fault(action="delay", delay_ms=600, method="GET")
    t0 = time.monotonic()
    status, _, _ = signed_request(s3server, "GET", f"/{s3bucket}")
    assert status == 200 and time.monotonic() - t0 >= 0.6
    s3server.add_fault(action="skew")
    status, _, resp = signed_request(s3server, "GET", f"/{s3bucket}")
    assert (status, error_code(resp)) == (403, "RequestTimeTooSkewed")


def test_deny_list_bucket(s3server, s3bucket):
    c = s3server.boto3_client()
    c.put_object(Bucket=s3bucket, Key="here", Body=b"x")
    s3server.deny_list_bucket(True)
    with pytest.raises(ClientError) as e:
        c.get_object(Bucket=s3bucket, Key="missing")
    assert client_error(e) == (403, "AccessDenied")
    with pytest.raises(ClientError) as e:
        c.head_object(Bucket=s3bucket, Key="missing")
    assert client_error(e)[0] == 403
    assert get_body(c, s3bucket, "here") == b"x"
    s3server.deny_list_bucket(False)
    with pytest.raises(ClientError) as e:
        c.get_object(Bucket=s3bucket, Key="missing")
    assert client_error(e) == (404, "NoSuchKey")


def test_killed_server_restarts_with_its_objects(s3server, s3bucket):
    c = s3server.boto3_client()
    c.put_object(Bucket=s3bucket, Key="keep", Body=b"kept")
    up, _ = _multipart(c, s3bucket, "pending", [b"p"])
    port = s3server.port
    s3server.kill()
    with pytest.raises(Exception):
        c.head_object(Bucket=s3bucket, Key="keep")
    s3server.restart()
    assert s3server.port == port
    assert get_body(c, s3bucket, "keep") == b"kept"
    assert [u["uploadId"] for u in s3server.uploads() if u["bucket"] == s3bucket] == [up]


def test_multipart_completion_is_checked(s3server, s3bucket):
    c = s3server.boto3_client()
    big, small = b"b" * (5 << 20), b"s" * 1000
    up, done = _multipart(c, s3bucket, "mp", [small, big])
    # A part under 5 MiB that is not the last one.
    with pytest.raises(ClientError) as e:
        c.complete_multipart_upload(Bucket=s3bucket, Key="mp", UploadId=up, MultipartUpload={"Parts": done})
    assert client_error(e) == (400, "EntityTooSmall")
    # Parts out of order, an ETag that is not the part's, a part never sent.
    with pytest.raises(ClientError) as e:
        c.complete_multipart_upload(Bucket=s3bucket, Key="mp", UploadId=up,
                                    MultipartUpload={"Parts": done[::-1]})
    assert client_error(e) == (400, "InvalidPartOrder")
    bad = [{"PartNumber": 1, "ETag": done[1]["ETag"]}]
    with pytest.raises(ClientError) as e:
        c.complete_multipart_upload(Bucket=s3bucket, Key="mp", UploadId=up, MultipartUpload={"Parts": bad})
    assert client_error(e) == (400, "InvalidPart")
    with pytest.raises(ClientError) as e:
        c.complete_multipart_upload(Bucket=s3bucket, Key="mp", UploadId=up,
                                    MultipartUpload={"Parts": done[1:] + [{"PartNumber": 3, "ETag": done[0]["ETag"]}]})
    assert client_error(e) == (400, "InvalidPart")
    # Nothing of that created the object; the valid subset does.
    with pytest.raises(ClientError) as e:
        c.head_object(Bucket=s3bucket, Key="mp")
    assert client_error(e)[0] == 404
    c.complete_multipart_upload(Bucket=s3bucket, Key="mp", UploadId=up, MultipartUpload={"Parts": done[:1]})
    assert get_body(c, s3bucket, "mp") == small


def test_list_multipart_uploads(s3server, s3bucket):
    c = s3server.boto3_client()
    ids = {}
    for key in ("p/a", "p/b", "p/b", "q/c"):
        ids.setdefault(key, []).append(c.create_multipart_upload(Bucket=s3bucket, Key=key)["UploadId"])
    r = c.list_multipart_uploads(Bucket=s3bucket, Prefix="p/")
    assert sorted((u["Key"], u["UploadId"]) for u in r["Uploads"]) == \
        sorted([("p/a", ids["p/a"][0])] + [("p/b", i) for i in ids["p/b"]])
    seen, kw = [], {"Bucket": s3bucket, "MaxUploads": 1}
    while True:
        r = c.list_multipart_uploads(**kw)
        seen += [(u["Key"], u["UploadId"]) for u in r.get("Uploads", [])]
        if not r["IsTruncated"]:
            break
        kw.update(KeyMarker=r["NextKeyMarker"], UploadIdMarker=r["NextUploadIdMarker"])
    assert len(seen) == 4 and len(set(seen)) == 4


def test_delete_objects_needs_content_md5(s3server, s3bucket):
    c = s3server.boto3_client()
    for k in ("a", "b"):
        c.put_object(Bucket=s3bucket, Key=k, Body=b"x")
    body = (b'<?xml version="1.0" encoding="UTF-8"?><Delete><Object><Key>a</Key></Object></Delete>')
    status, _, resp = signed_request(s3server, "POST", f"/{s3bucket}", query=[("delete", "")], body=body)
    assert (status, error_code(resp)) == (400, "InvalidRequest")
    r = c.delete_objects(Bucket=s3bucket, Delete={"Objects": [{"Key": "a"}, {"Key": "b"}]})
    assert sorted(d["Key"] for d in r["Deleted"]) == ["a", "b"]
    assert c.list_objects_v2(Bucket=s3bucket)["KeyCount"] == 0


def test_fault_truncate_cuts_the_answer(s3server, s3bucket):
    c = s3server.boto3_client()
    data = bytes(range(256)) * 4096
    c.put_object(Bucket=s3bucket, Key="k", Body=data)
    s3server.add_fault(method="GET", action="truncate", after_bytes=100000)
    with pytest.raises(http.client.IncompleteRead) as e:
        signed_request(s3server, "GET", f"/{s3bucket}/k")
    assert len(e.value.partial) == 100000 and e.value.partial == data[:100000]
    assert get_body(c, s3bucket, "k") == data
