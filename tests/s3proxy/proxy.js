'use strict';
/*
 * walship's S3 test server: s3rver (in-process, on an ephemeral loopback port)
 * behind a proxy that checks what s3rver does not: SigV4 signatures (recomputed
 * with AWS's own signer), session tokens, clock skew, x-amz-content-sha256
 * against the received body, If-None-Match: * on PutObject and
 * CompleteMultipartUpload, and a few multipart details.  It also injects
 * faults and records every request for the tests (control API under
 * /__walship/, unsigned).  See README.md.
 *
 * node --openssl-legacy-provider proxy.js --port P --data DIR [--region R]
 *      --credentials AKID:SECRET[:TOKEN] ... [--bucket NAME ...] [--deny-list-bucket]
 */

const crypto = require('crypto');
const fs = require('fs');
const fsp = require('fs/promises');
const http = require('http');
const path = require('path');

const S3rver = require('s3rver');
const FilesystemStore = require('s3rver/lib/stores/filesystem');
const S3Object = require('s3rver/lib/models/object');
const { SignatureV4 } = require('@smithy/signature-v4');
const { Sha256 } = require('@aws-crypto/sha256-js');

const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const MAX_SKEW_MS = 15 * 60 * 1000;
const CONTROL_PREFIX = '/__walship/';

/* ------------------------------------------------------------------ */
/* command line */

function usage(msg) {
	process.stderr.write(`proxy.js: ${msg}\n` +
		'usage: node --openssl-legacy-provider proxy.js --port P --data DIR [--region R] ' +
		'--credentials AKID:SECRET[:TOKEN] ... [--bucket NAME ...] [--deny-list-bucket]\n');
	process.exit(2);
}

function parseArgs(argv) {
	const opts = { port: null, data: null, region: 'us-east-1', credentials: new Map(), buckets: [],
		denyListBucket: false };
	for (let i = 0; i < argv.length; i++) {
		const a = argv[i];
		const val = () => {
			if (i + 1 >= argv.length)
				usage(`${a} needs a value`);
			return argv[++i];
		};
		switch (a) {
		case '--port': opts.port = Number(val()); break;
		case '--data': opts.data = val(); break;
		case '--region': opts.region = val(); break;
		case '--bucket': opts.buckets.push(val()); break;
		case '--deny-list-bucket': opts.denyListBucket = true; break;
		case '--credentials': {
			const v = val();
			const i1 = v.indexOf(':');
			if (i1 <= 0)
				usage('--credentials wants AKID:SECRET[:TOKEN]');
			const rest = v.slice(i1 + 1);
			const i2 = rest.indexOf(':');
			const secret = i2 < 0 ? rest : rest.slice(0, i2);
			const token = i2 < 0 ? null : rest.slice(i2 + 1);
			if (!secret)
				usage('--credentials wants AKID:SECRET[:TOKEN]');
			opts.credentials.set(v.slice(0, i1), { secret, token: token || null });
			break;
		}
		default: usage(`unknown argument "${a}"`);
		}
	}
	if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535)
		usage('--port is required (0 picks a free port)');
	if (!opts.data)
		usage('--data is required');
	if (opts.credentials.size === 0)
		usage('at least one --credentials is required');
	return opts;
}

const opts = parseArgs(process.argv.slice(2));
let denyListBucket = opts.denyListBucket;

/* ------------------------------------------------------------------ */
/*
 * s3rver's filesystem store answers a PUT before its write stream has
 * finished, and writes the object file in place: a GET right after a PUT can
 * read a short object, and a killed server leaves a truncated one.  S3 never
 * shows either, so objects and parts are written to a temporary file and
 * renamed once complete.
 */

function tmpName(p) {
	return `${p}.tmp-${process.pid}-${crypto.randomBytes(6).toString('hex')}`;
}

async function writeAtomic(p, data) {
	const tmp = tmpName(p);
	await fsp.writeFile(tmp, data);
	await fsp.rename(tmp, p);
}

async function streamToFile(content, p) {
	const tmp = tmpName(p);
	const md5 = crypto.createHash('md5');
	let size = 0;
	try {
		await new Promise((resolve, reject) => {
			const ws = fs.createWriteStream(tmp);
			ws.on('error', reject);
			ws.on('close', resolve);
			if (Buffer.isBuffer(content)) {
				md5.update(content);
				size = content.length;
				ws.end(content);
				return;
			}
			content.on('error', (err) => { ws.destroy(); reject(err); });
			content.on('data', (chunk) => { md5.update(chunk); size += chunk.length; });
			content.pipe(ws);
		});
		await fsp.rename(tmp, p);
	} catch (err) {
		await fsp.rm(tmp, { force: true });
		throw err;
	}
	return { size, md5: md5.digest('hex') };
}

FilesystemStore.prototype.putObject = async function putObject(object) {
	const objectPath = this.getResourcePath(object.bucket, object.key, 'object');
	await fsp.mkdir(path.dirname(objectPath), { recursive: true });
	const tmp = tmpName(objectPath);
	const { size, md5 } = await streamToFile(object.content, tmp);
	try {
		await this.putMetadata(object.bucket, object.key, object.metadata, md5);
		await fsp.rename(tmp, objectPath);
	} catch (err) {
		await fsp.rm(tmp, { force: true });
		throw err;
	}
	return { size, md5 };
};

FilesystemStore.prototype.putPart = async function putPart(bucket, uploadId, partNumber, content) {
	const partPath = path.join(this.getResourcePath(bucket, undefined, 'uploads'), uploadId,
		partNumber.toString());
	await fsp.mkdir(path.dirname(partPath), { recursive: true });
	const { size, md5 } = await streamToFile(content, partPath);
	await writeAtomic(`${partPath}.md5`, md5);
	return { size, md5 };
};

/* The original writes metadata.json and object.md5 in place: write them atomically too. */
FilesystemStore.prototype.putMetadata = async function putMetadata(bucket, key, metadata, md5) {
	const json = {};
	for (const [k, v] of Object.entries(metadata || {})) {
		if (S3Object.ALLOWED_METADATA.includes(k) || k.startsWith('x-amz-meta-'))
			json[k] = v;
	}
	if (md5)
		await writeAtomic(this.getResourcePath(bucket, key, 'object.md5'), md5);
	await writeAtomic(this.getResourcePath(bucket, key, 'metadata.json'), JSON.stringify(json, null, 2));
};

/* ------------------------------------------------------------------ */
/* helpers */

function xmlEscape(s) {
	return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
		.replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

const MESSAGES = {
	AccessDenied: 'Access Denied',
	InvalidAccessKeyId: 'The AWS Access Key Id you provided does not exist in our records.',
	SignatureDoesNotMatch: 'The request signature we calculated does not match the signature you ' +
		'provided. Check your key and signing method.',
	RequestTimeTooSkewed: 'The difference between the request time and the current time is too large.',
	InvalidToken: 'The provided token is malformed or otherwise invalid.',
	XAmzContentSHA256Mismatch: 'The provided \'x-amz-content-sha256\' header does not match what was computed.',
	PreconditionFailed: 'At least one of the pre-conditions you specified did not hold',
	NoSuchUpload: 'The specified upload does not exist. The upload ID may be invalid, or the upload ' +
		'may have been aborted or completed.',
	InternalError: 'We encountered an internal error. Please try again.',
	SlowDown: 'Please reduce your request rate.',
	ServiceUnavailable: 'Service is unable to handle request.',
	MissingContentLength: 'You must provide the Content-Length HTTP header.',
};

function requestId() {
	return crypto.randomBytes(8).toString('hex').toUpperCase();
}

/* Parses the path of a path-style request into bucket and key (both decoded). */
function splitPath(rawPath) {
	const segs = rawPath.replace(/^\//, '');
	const slash = segs.indexOf('/');
	const dec = (s) => {
		try {
			return decodeURIComponent(s);
		} catch (e) {
			return s;
		}
	};
	if (segs === '')
		return { bucket: null, key: null };
	if (slash < 0)
		return { bucket: dec(segs), key: null };
	const key = segs.slice(slash + 1);
	return { bucket: dec(segs.slice(0, slash)), key: key === '' ? null : dec(key) };
}

/* The query as the signer wants it: decoded names and values, repeated names as arrays. */
function parseQuery(rawQuery) {
	const q = {};
	if (!rawQuery)
		return q;
	for (const part of rawQuery.split('&')) {
		if (part === '')
			continue;
		const eq = part.indexOf('=');
		const k = decodeURIComponent(eq < 0 ? part : part.slice(0, eq));
		const v = eq < 0 ? '' : decodeURIComponent(part.slice(eq + 1));
		if (k in q)
			q[k] = [].concat(q[k], v);
		else
			q[k] = v;
	}
	return q;
}

/*
 * The canonical URI of an S3 request: each segment of the path, decoded, then
 * escaped once with RFC 3986's rules (no dot-segment removal, no double
 * escaping).  For a client that escapes keys properly it is the path as sent;
 * one that sends ':' or '+' raw and signs them so is refused, as by S3.
 */
function canonicalPath(rawPath) {
	return rawPath.split('/').map((seg) => encodeURIComponent(decodeURIComponent(seg))
		.replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase())).join('/');
}

/* Per-key async mutex: writers of one key (and readers, so that none sees a write half done). */
const locks = new Map();
async function withLock(name, fn) {
	const prev = locks.get(name) || Promise.resolve();
	let release;
	const mine = new Promise((r) => { release = r; });
	const chain = prev.then(() => mine);
	locks.set(name, chain);
	await prev;
	try {
		return await fn();
	} finally {
		release();
		if (locks.get(name) === chain)
			locks.delete(name);
	}
}

/* ------------------------------------------------------------------ */
/* request log and faults */

let requestLog = [];
let faults = [];
let nextConnId = 0;
let nextReqId = 0;

function validateFault(r) {
	if (typeof r !== 'object' || r === null || Array.isArray(r))
		throw new Error('a fault rule is a JSON object');
	const actions = ['status', 'drop', 'delay', 'skew', 'truncate'];
	if (!actions.includes(r.action))
		throw new Error(`"action" must be one of ${actions.join(', ')}`);
	const rule = {
		method: r.method ? String(r.method).toUpperCase() : null,
		path_regex: r.path_regex ? String(r.path_regex) : null,
		action: r.action,
		count: r.count === undefined ? 1 : Number(r.count),
		status: r.status === undefined ? 500 : Number(r.status),
		code: r.code ? String(r.code) : null,
		message: r.message ? String(r.message) : null,
		/* A body of its own (e.g. an HTML page): the answer of something that is not S3. */
		body: r.body === undefined || r.body === null ? null : String(r.body),
		content_type: r.content_type ? String(r.content_type) : 'text/html',
		after_bytes: r.after_bytes === undefined || r.after_bytes === null ? null : Number(r.after_bytes),
		delay_ms: r.delay_ms === undefined ? 0 : Number(r.delay_ms),
		fired: 0,
	};
	if (rule.path_regex !== null)
		rule.re = new RegExp(rule.path_regex);
	if (!Number.isInteger(rule.count) || rule.count < -1)
		throw new Error('"count" must be an integer >= -1');
	if (!Number.isInteger(rule.status) || rule.status < 100 || rule.status > 599)
		throw new Error('"status" must be an HTTP status');
	if (rule.code === null)
		rule.code = rule.status === 503 ? 'SlowDown' : rule.status === 500 ? 'InternalError' : 'InjectedFault';
	return rule;
}

function publicFault(r) {
	const { re, ...rest } = r;
	void re;
	return rest;
}

/* Takes the next rule that matches, and uses one of its shots. */
/* The first rule that matches and has not fired for this request yet (a delay goes on to the next). */
function takeFault(method, pathAndQuery, fired) {
	for (const r of faults) {
		if (r.count === 0 || fired.has(r))
			continue;
		if (r.method && r.method !== method)
			continue;
		if (r.re && !r.re.test(pathAndQuery))
			continue;
		if (r.count > 0)
			r.count--;
		r.fired++;
		fired.add(r);
		return r;
	}
	return null;
}

/* ------------------------------------------------------------------ */
/* answers */

function sendXmlError(req, res, entry, status, code, extra = {}) {
	const parts = [`<Code>${xmlEscape(code)}</Code>`,
		`<Message>${xmlEscape(extra.Message || MESSAGES[code] || code)}</Message>`];
	for (const [k, v] of Object.entries(extra)) {
		if (k !== 'Message' && v !== undefined && v !== null)
			parts.push(`<${k}>${xmlEscape(v)}</${k}>`);
	}
	const rid = requestId();
	parts.push(`<RequestId>${rid}</RequestId>`);
	const body = Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>\n<Error>${parts.join('')}</Error>`);
	entry.status = status;
	entry.code = code;
	if (res.headersSent) {
		res.destroy();
		return;
	}
	const headers = { 'Content-Type': 'application/xml', 'x-amz-request-id': rid };
	if (req.method === 'HEAD') {
		/* S3 answers HEAD errors without a body. */
		headers['Content-Length'] = 0;
		res.writeHead(status, headers);
		res.end();
		return;
	}
	headers['Content-Length'] = body.length;
	res.writeHead(status, headers);
	res.end(body);
}

/* An answer that does not come from S3 (a misrouting proxy, a wrong endpoint): no S3 headers. */
function sendForeign(req, res, entry, status, body, contentType) {
	const data = Buffer.from(body);
	entry.status = status;
	entry.code = null;
	res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': req.method === 'HEAD' ? 0 : data.length });
	res.end(req.method === 'HEAD' ? undefined : data);
}

function sendJson(res, status, value) {
	const body = Buffer.from(JSON.stringify(value, null, 1) + '\n');
	res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': body.length });
	res.end(body);
}

/* Reads the whole body, hashing it on the way; resolves { body, sha256 }. */
function readBody(req, dropAfter) {
	return new Promise((resolve, reject) => {
		const chunks = [];
		const hash = crypto.createHash('sha256');
		let n = 0;
		let done = false;
		req.on('data', (chunk) => {
			if (done)
				return;
			if (dropAfter !== null && n + chunk.length >= dropAfter) {
				done = true;
				reject(Object.assign(new Error('dropped'), { dropped: true }));
				return;
			}
			n += chunk.length;
			hash.update(chunk);
			chunks.push(chunk);
		});
		req.on('end', () => {
			if (done)
				return;
			done = true;
			if (dropAfter !== null) {
				reject(Object.assign(new Error('dropped'), { dropped: true }));
				return;
			}
			resolve({ body: Buffer.concat(chunks, n), sha256: hash.digest('hex') });
		});
		req.on('error', (err) => {
			if (!done) {
				done = true;
				reject(err);
			}
		});
		req.on('aborted', () => {
			if (!done) {
				done = true;
				reject(Object.assign(new Error('client went away'), { aborted: true }));
			}
		});
	});
}

/* ------------------------------------------------------------------ */
/* SigV4 checking */

class AuthError extends Error {
	constructor(status, code, extra = {}) {
		super(code);
		this.status = status;
		this.code = code;
		this.extra = extra;
	}
}

function parseAmzDate(s) {
	const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s || '');
	if (!m)
		return null;
	return new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]));
}

/*
 * Checks the request's Authorization header; returns { akid } or throws
 * AuthError.  The body's hash is checked later, once the body is in.
 */
async function checkAuth(req, rawPath, rawQuery) {
	const auth = req.headers.authorization;
	if (!auth) {
		if (rawQuery && /(^|&)(X-Amz-Algorithm|Signature)=/i.test(rawQuery))
			throw new AuthError(403, 'AccessDenied', { Message: 'Query-string (presigned) authentication is not accepted by this test server.' });
		throw new AuthError(403, 'AccessDenied', { Message: 'Anonymous access is denied: the request carries no Authorization header.' });
	}
	if (!auth.startsWith('AWS4-HMAC-SHA256 '))
		throw new AuthError(403, 'AccessDenied', { Message: 'Only AWS4-HMAC-SHA256 (signature version 4) authorization is accepted.' });
	const fields = {};
	for (const f of auth.slice('AWS4-HMAC-SHA256 '.length).split(',')) {
		const t = f.trim();
		const eq = t.indexOf('=');
		if (eq > 0)
			fields[t.slice(0, eq)] = t.slice(eq + 1);
	}
	if (!fields.Credential || !fields.SignedHeaders || !fields.Signature)
		throw new AuthError(400, 'AuthorizationHeaderMalformed', { Message: 'The authorization header is malformed; it needs Credential, SignedHeaders and Signature.' });
	const scope = fields.Credential.split('/');
	if (scope.length !== 5)
		throw new AuthError(400, 'AuthorizationHeaderMalformed', { Message: 'The authorization header is malformed; the Credential is mal-formed.' });
	const [akid, scopeDate, scopeRegion, scopeService, scopeTerm] = scope;
	const cred = opts.credentials.get(akid);
	if (!cred)
		throw new AuthError(403, 'InvalidAccessKeyId', { AWSAccessKeyId: akid });

	const amzDate = req.headers['x-amz-date'];
	const when = parseAmzDate(amzDate);
	if (!when)
		throw new AuthError(403, 'AccessDenied', { Message: 'AWS authentication requires a valid x-amz-date header (YYYYMMDDTHHMMSSZ).' });
	const now = Date.now();
	if (Math.abs(now - when.getTime()) > MAX_SKEW_MS) {
		throw new AuthError(403, 'RequestTimeTooSkewed', {
			RequestTime: amzDate,
			ServerTime: new Date(now).toISOString().replace(/\.\d{3}Z$/, 'Z'),
			MaxAllowedSkewMilliseconds: MAX_SKEW_MS,
		});
	}
	if (scopeDate !== amzDate.slice(0, 8) || scopeService !== 's3' || scopeTerm !== 'aws4_request')
		throw new AuthError(400, 'AuthorizationHeaderMalformed', { Message: `The authorization header is malformed; the credential scope "${scope.slice(1).join('/')}" does not match the date or service.` });
	if (scopeRegion !== opts.region)
		throw new AuthError(400, 'AuthorizationHeaderMalformed', { Message: `The authorization header is malformed; the region '${scopeRegion}' is wrong; expecting '${opts.region}'`, Region: opts.region });

	const signed = fields.SignedHeaders.split(';');
	for (const h of ['host', 'x-amz-date', 'x-amz-content-sha256']) {
		if (!signed.includes(h))
			throw new AuthError(403, 'AccessDenied', { Message: `The header "${h}" must be signed (it is not in SignedHeaders).` });
	}

	/* Recompute the signature with AWS's signer over exactly the headers the client signed. */
	const headers = {};
	for (const h of signed) {
		if (h !== 'x-amz-date' && req.headers[h] !== undefined)
			headers[h] = String(req.headers[h]);
	}
	let query;
	let canonPath;
	try {
		query = parseQuery(rawQuery);
		canonPath = canonicalPath(rawPath);
	} catch (e) {
		throw new AuthError(400, 'InvalidURI', { Message: 'Couldn\'t parse the specified URI (bad percent-encoding).' });
	}
	const signer = new SignatureV4({
		credentials: { accessKeyId: akid, secretAccessKey: cred.secret },
		region: opts.region,
		service: 's3',
		sha256: Sha256,
		uriEscapePath: false,
		applyChecksum: false,
	});
	const out = await signer.sign({
		method: req.method,
		protocol: 'http:',
		hostname: '127.0.0.1',
		path: canonPath,
		query,
		headers,
	}, { signingDate: when, signableHeaders: new Set(signed) });
	const expected = `AWS4-HMAC-SHA256 Credential=${akid}/${scopeDate}/${opts.region}/s3/aws4_request, ` +
		`SignedHeaders=${fields.SignedHeaders}, Signature=${fields.Signature}`;
	const got = out.headers.authorization;
	const a = Buffer.from(got);
	const b = Buffer.from(expected);
	if (a.length !== b.length || !crypto.timingSafeEqual(a, b))
		throw new AuthError(403, 'SignatureDoesNotMatch', { AWSAccessKeyId: akid });

	/* A temporary credential is only valid with its (signed) session token. */
	const token = req.headers['x-amz-security-token'];
	if (cred.token !== null) {
		if (token === undefined)
			throw new AuthError(403, 'InvalidToken', { Message: 'This credential needs its session token (x-amz-security-token).' });
		if (!signed.includes('x-amz-security-token'))
			throw new AuthError(403, 'AccessDenied', { Message: 'The header "x-amz-security-token" must be signed.' });
		if (token !== cred.token)
			throw new AuthError(403, 'InvalidToken', {});
	} else if (token !== undefined) {
		throw new AuthError(403, 'InvalidToken', { Message: 'A session token was sent with a credential that has none.' });
	}

	const sha = req.headers['x-amz-content-sha256'];
	if (sha === 'UNSIGNED-PAYLOAD' || (sha && sha.startsWith('STREAMING-')))
		throw new AuthError(400, 'UnsignedPayloadRefused', { Message: `This test server wants the body's real SHA-256 in x-amz-content-sha256, not "${sha}".` });
	if (!/^[0-9a-f]{64}$/.test(sha || ''))
		throw new AuthError(400, 'InvalidArgument', { Message: 'x-amz-content-sha256 must be the hex SHA-256 of the body.', ArgumentName: 'x-amz-content-sha256', ArgumentValue: sha });
	return { akid };
}

/* ------------------------------------------------------------------ */
/* upstream (s3rver) */

let upstreamPort = 0;
const upstreamAgent = new http.Agent({ keepAlive: true, maxSockets: 64 });

function upstream(method, url, headers, body) {
	return new Promise((resolve, reject) => {
		const h = { ...headers, host: `127.0.0.1:${upstreamPort}` };
		if (body !== null) {
			h['content-length'] = String(body.length);
			delete h['transfer-encoding'];
		}
		const r = http.request({ host: '127.0.0.1', port: upstreamPort, method, path: url, headers: h,
			agent: upstreamAgent }, resolve);
		r.on('error', reject);
		r.end(body === null ? undefined : body);
	});
}

async function objectExists(bucket, key) {
	const url = '/' + encodeURIComponent(bucket) + '/' + key.split('/').map(encodeURIComponent).join('/');
	const res = await upstream('HEAD', url, {}, null);
	res.resume();
	if (res.statusCode === 200)
		return true;
	if (res.statusCode === 404)
		return false;
	throw new Error(`s3rver answered HEAD ${url} with ${res.statusCode}`);
}

function uploadsDir(bucket) {
	return path.join(opts.data, bucket, '._S3rver_uploads');
}

function validId(s) {
	return /^[0-9a-zA-Z._-]+$/.test(s);
}

async function uploadExists(bucket, uploadId) {
	if (!validId(uploadId))
		return false;
	try {
		await fsp.access(path.join(uploadsDir(bucket), uploadId, 'key'));
		return true;
	} catch (e) {
		return false;
	}
}

async function listUploads() {
	const out = [];
	let buckets = [];
	try {
		buckets = await fsp.readdir(opts.data);
	} catch (e) {
		return out;
	}
	for (const bucket of buckets.sort()) {
		let ids = [];
		try {
			ids = await fsp.readdir(uploadsDir(bucket));
		} catch (e) {
			continue;
		}
		for (const uploadId of ids.sort()) {
			try {
				const keyFile = path.join(uploadsDir(bucket), uploadId, 'key');
				const key = await fsp.readFile(keyFile, 'utf8');
				const initiated = (await fsp.stat(keyFile)).mtimeMs;
				const parts = (await fsp.readdir(path.join(uploadsDir(bucket), uploadId)))
					.filter((n) => /^\d+$/.test(n)).map(Number).sort((x, y) => x - y);
				out.push({ bucket, key, uploadId, parts, initiated });
			} catch (e) {
				/* completed or aborted meanwhile */
			}
		}
	}
	return out;
}

/*
 * What S3 checks in CompleteMultipartUpload and s3rver does not: parts listed
 * in ascending order, each uploaded with that ETag, all but the last at least
 * 5 MiB.  Returns null or { status, code, extra }.
 */
async function checkCompletion(bucket, uploadId, body) {
	const text = body.toString('utf8');
	const parts = [];
	const re = /<Part>([\s\S]*?)<\/Part>/g;
	let m;
	while ((m = re.exec(text)) !== null) {
		const num = /<PartNumber>\s*(\d+)\s*<\/PartNumber>/.exec(m[1]);
		const etag = /<ETag>([^<]*)<\/ETag>/.exec(m[1]);
		if (!num || !etag)
			return { status: 400, code: 'MalformedXML', extra: { Message: 'A Part needs PartNumber and ETag.' } };
		parts.push({ number: Number(num[1]), etag: etag[1].replace(/&quot;/g, '"').replace(/"/g, '').trim() });
	}
	if (parts.length === 0)
		return { status: 400, code: 'MalformedXML', extra: { Message: 'The XML you provided was not well-formed or did not validate against our published schema (no Part).' } };
	const dir = path.join(uploadsDir(bucket), uploadId);
	for (let i = 0; i < parts.length; i++) {
		const p = parts[i];
		if (i > 0 && p.number <= parts[i - 1].number)
			return { status: 400, code: 'InvalidPartOrder', extra: { Message: 'The list of parts was not in ascending order. The parts list must be specified in order by part number.' } };
		let size;
		let md5;
		try {
			size = (await fsp.stat(path.join(dir, String(p.number)))).size;
			md5 = (await fsp.readFile(path.join(dir, `${p.number}.md5`), 'utf8')).trim();
		} catch (e) {
			return { status: 400, code: 'InvalidPart', extra: { Message: `Part ${p.number} was not uploaded.`, UploadId: uploadId, PartNumber: p.number } };
		}
		if (md5 !== p.etag)
			return { status: 400, code: 'InvalidPart', extra: { Message: `The ETag given for part ${p.number} is not the one of the uploaded part.`, UploadId: uploadId, PartNumber: p.number, ETag: p.etag } };
		if (i < parts.length - 1 && size < 5 * 1024 * 1024)
			return { status: 400, code: 'EntityTooSmall', extra: { Message: 'Your proposed upload is smaller than the minimum allowed object size.', ProposedSize: size, MinSizeAllowed: 5 * 1024 * 1024, PartNumber: p.number } };
	}
	return null;
}

/* ListMultipartUploads, which s3rver does not implement (no delimiter support). */
async function listMultipartUploads(req, res, entry, bucket, query) {
	if (!fs.existsSync(path.join(opts.data, bucket)))
		return sendXmlError(req, res, entry, 404, 'NoSuchBucket', { BucketName: bucket });
	const prefix = String(query.prefix || '');
	const keyMarker = String(query['key-marker'] || '');
	const idMarker = String(query['upload-id-marker'] || '');
	const max = Math.min(1000, query['max-uploads'] === undefined ? 1000 : Number(query['max-uploads']));
	const enc = query['encoding-type'] === 'url'
		? (s) => encodeURIComponent(s).replace(/%2F/g, '/') : (s) => s;
	let all = (await listUploads()).filter((u) => u.bucket === bucket && u.key.startsWith(prefix));
	all.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.initiated - b.initiated));
	if (keyMarker) {
		if (idMarker) {
			const at = all.findIndex((u) => u.key === keyMarker && u.uploadId === idMarker);
			all = all.filter((u, i) => u.key > keyMarker || (u.key === keyMarker && at >= 0 && i > at));
		} else {
			all = all.filter((u) => u.key > keyMarker);
		}
	}
	const page = all.slice(0, max);
	const truncated = all.length > page.length;
	const last = page[page.length - 1];
	const x = (tag, v) => `<${tag}>${xmlEscape(v)}</${tag}>`;
	let out = '<?xml version="1.0" encoding="UTF-8"?>\n' +
		'<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
		x('Bucket', bucket) + x('KeyMarker', enc(keyMarker)) + x('UploadIdMarker', idMarker) +
		x('NextKeyMarker', truncated ? enc(last.key) : '') +
		x('NextUploadIdMarker', truncated ? last.uploadId : '') + x('Prefix', enc(prefix)) +
		x('MaxUploads', max) + x('IsTruncated', truncated ? 'true' : 'false');
	if (query['encoding-type'] === 'url')
		out += x('EncodingType', 'url');
	for (const u of page) {
		out += '<Upload>' + x('Key', enc(u.key)) + x('UploadId', u.uploadId) +
			'<Initiator><ID>walship-test</ID><DisplayName>walship-test</DisplayName></Initiator>' +
			'<Owner><ID>walship-test</ID><DisplayName>walship-test</DisplayName></Owner>' +
			x('StorageClass', 'STANDARD') +
			x('Initiated', new Date(u.initiated).toISOString()) + '</Upload>';
	}
	out += '</ListMultipartUploadsResult>';
	const body = Buffer.from(out);
	entry.status = 200;
	res.writeHead(200, { 'Content-Type': 'application/xml', 'Content-Length': body.length,
		'x-amz-request-id': requestId() });
	res.end(body);
}

/* ------------------------------------------------------------------ */
/* control API */

async function handleControl(req, res, rawPath) {
	const what = rawPath.slice(CONTROL_PREFIX.length);
	let body = {};
	if (req.method === 'POST') {
		const { body: b } = await readBody(req, null);
		try {
			body = b.length ? JSON.parse(b.toString('utf8')) : {};
		} catch (e) {
			return sendJson(res, 400, { error: `bad JSON: ${e.message}` });
		}
	} else {
		req.resume();
	}
	if (what === 'faults' && req.method === 'POST') {
		let rules;
		try {
			rules = (Array.isArray(body) ? body : [body]).map(validateFault);
		} catch (e) {
			return sendJson(res, 400, { error: e.message });
		}
		faults.push(...rules);
		return sendJson(res, 200, faults.map(publicFault));
	}
	if (what === 'faults' && req.method === 'GET')
		return sendJson(res, 200, faults.map(publicFault));
	if (what === 'faults' && req.method === 'DELETE') {
		faults = [];
		return sendJson(res, 200, []);
	}
	if (what === 'log' && req.method === 'GET')
		return sendJson(res, 200, requestLog);
	if (what === 'log' && req.method === 'DELETE') {
		requestLog = [];
		return sendJson(res, 200, []);
	}
	if (what === 'uploads' && req.method === 'GET')
		return sendJson(res, 200, await listUploads());
	if (what === 'deny-list-bucket' && req.method === 'POST') {
		denyListBucket = !!body.on;
		return sendJson(res, 200, { on: denyListBucket });
	}
	if (what === 'deny-list-bucket' && req.method === 'GET')
		return sendJson(res, 200, { on: denyListBucket });
	return sendJson(res, 404, { error: `no control endpoint ${req.method} ${rawPath}` });
}

/* ------------------------------------------------------------------ */
/* S3 requests */

function forwardHeaders(req) {
	const h = {};
	for (const [k, v] of Object.entries(req.headers)) {
		/* s3rver reads no signature (and would refuse our keys); If-None-Match is ours to handle on writes. */
		if (k === 'authorization' || k === 'x-amz-security-token' || k === 'connection' || k === 'expect' ||
			k === 'keep-alive')
			continue;
		h[k] = v;
	}
	return h;
}

/* Passes s3rver's answer on; error bodies (small XML) are read to log their code. */
async function relay(req, res, entry, ures, opt = {}) {
	const status = ures.statusCode;
	const headers = { ...ures.headers };
	delete headers.connection;
	delete headers['keep-alive'];
	if (status >= 400) {
		const chunks = [];
		for await (const c of ures)
			chunks.push(c);
		const body = Buffer.concat(chunks);
		const m = /<Code>([^<]*)<\/Code>/.exec(body.toString('utf8'));
		let code = m ? m[1] : null;
		if (code === null && status === 404 && req.method === 'HEAD' && opt.bucket &&
			fs.existsSync(path.join(opts.data, opt.bucket)))
			code = 'NoSuchKey';
		if (opt.denyMissing && code === 'NoSuchKey')
			return sendXmlError(req, res, entry, 403, 'AccessDenied');
		entry.status = status;
		entry.code = code;
		if (headers['content-type'] === undefined && body.length)
			headers['content-type'] = 'application/xml';
		headers['content-length'] = String(body.length);
		delete headers['transfer-encoding'];
		res.writeHead(status, headers);
		res.end(req.method === 'HEAD' ? undefined : body);
		return;
	}
	entry.status = status;
	res.writeHead(status, headers);
	if (req.walshipTruncate !== undefined) {
		/* The connection dies after N bytes of the body, as a network failing mid-download would. */
		let left = req.walshipTruncate;
		entry.truncated = true;
		res.flushHeaders();
		for await (const chunk of ures) {
			if (chunk.length >= left) {
				if (left > 0)
					res.write(chunk.subarray(0, left));
				break;
			}
			left -= chunk.length;
			res.write(chunk);
		}
		ures.destroy();
		await new Promise((r) => setTimeout(r, 50));
		req.socket.destroy();
		return;
	}
	await new Promise((resolve) => {
		ures.pipe(res);
		ures.on('end', resolve);
		ures.on('error', () => { res.destroy(); resolve(); });
		res.on('close', resolve);
	});
}

async function handleS3(req, res, entry, rawPath, rawQuery) {
	const method = req.method;
	const { bucket, key } = splitPath(rawPath);
	const pathAndQuery = rawQuery === null ? rawPath : `${rawPath}?${rawQuery}`;
	let query;
	try {
		query = parseQuery(rawQuery);
	} catch (e) {
		query = {};
	}

	/* Faults come first: they stand for a network or a server that misbehaves. */
	let rule;
	const fired = new Set();
	while ((rule = takeFault(method, pathAndQuery, fired)) !== null) {
		entry.fault = rule.action;
		if (rule.action === 'delay') {
			await new Promise((r) => setTimeout(r, rule.delay_ms));
			continue;
		}
		if (rule.action === 'truncate') {
			/* Handled normally; the answer's body is cut after after_bytes bytes. */
			req.walshipTruncate = rule.after_bytes === null ? 0 : rule.after_bytes;
			break;
		}
		if (rule.action === 'drop') {
			entry.status = null;
			entry.dropped = true;
			if (rule.after_bytes === null) {
				req.socket.destroy();
				return;
			}
			try {
				await readBody(req, rule.after_bytes);
			} catch (e) {
				/* expected */
			}
			req.socket.destroy();
			return;
		}
		await readBody(req, null).catch(() => null);
		if (rule.action === 'skew') {
			return sendXmlError(req, res, entry, 403, 'RequestTimeTooSkewed', {
				RequestTime: req.headers['x-amz-date'],
				ServerTime: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
				MaxAllowedSkewMilliseconds: MAX_SKEW_MS,
			});
		}
		if (rule.body !== null)
			return sendForeign(req, res, entry, rule.status, rule.body, rule.content_type);
		return sendXmlError(req, res, entry, rule.status, rule.code, rule.message ? { Message: rule.message } : {});
	}

	try {
		await checkAuth(req, rawPath, rawQuery);
	} catch (e) {
		if (!(e instanceof AuthError))
			throw e;
		/* Read what the client sends so that the connection stays usable, then answer. */
		await readBody(req, null).catch(() => null);
		return sendXmlError(req, res, entry, e.status, e.code, e.extra);
	}

	if ((method === 'PUT' || method === 'POST') && req.headers['content-length'] === undefined)
		return sendXmlError(req, res, entry, 411, 'MissingContentLength');

	let got;
	try {
		got = await readBody(req, null);
	} catch (e) {
		entry.status = null;
		entry.aborted = true;
		return;
	}
	const claimed = req.headers['x-amz-content-sha256'];
	if (got.sha256 !== claimed) {
		return sendXmlError(req, res, entry, 400, 'XAmzContentSHA256Mismatch', {
			ClientComputedContentSHA256: claimed,
			S3ComputedContentSHA256: got.sha256,
		});
	}

	const headers = forwardHeaders(req);
	const url = req.url;
	const hasUploadId = Object.prototype.hasOwnProperty.call(query, 'uploadId');
	const uploadId = hasUploadId ? String(query.uploadId) : null;
	const ifNoneMatch = req.headers['if-none-match'];

	if (bucket !== null && key !== null) {
		const isWrite = (method === 'PUT' && !hasUploadId) || (method === 'POST' && hasUploadId) ||
			method === 'DELETE';
		const lockName = `${bucket}\0${key}`;

		/* s3rver knows nothing of AbortMultipartUpload, nor of unknown upload ids. */
		if (hasUploadId && (method === 'DELETE' || method === 'PUT' || method === 'POST')) {
			if (!(await uploadExists(bucket, uploadId)))
				return sendXmlError(req, res, entry, 404, 'NoSuchUpload', { UploadId: uploadId });
			if (method === 'DELETE') {
				await fsp.rm(path.join(uploadsDir(bucket), uploadId), { recursive: true, force: true });
				entry.status = 204;
				res.writeHead(204, { 'x-amz-request-id': requestId() });
				res.end();
				return;
			}
		}

		if (method === 'POST' && hasUploadId) {
			const err = await checkCompletion(bucket, uploadId, got.body);
			if (err)
				return sendXmlError(req, res, entry, err.status, err.code, err.extra);
		}

		if (isWrite && method !== 'DELETE' && ifNoneMatch !== undefined) {
			delete headers['if-none-match'];
			if (ifNoneMatch.trim() !== '*') {
				return sendXmlError(req, res, entry, 501, 'NotImplemented', {
					Message: 'Only If-None-Match: * is supported on writes.', Header: 'If-None-Match' });
			}
			return withLock(lockName, async () => {
				if (await objectExists(bucket, key))
					return sendXmlError(req, res, entry, 412, 'PreconditionFailed', { Condition: 'If-None-Match', Key: key });
				const ures = await upstream(method, url, headers, got.body);
				await relay(req, res, entry, ures);
			});
		}
		if (isWrite) {
			delete headers['if-none-match'];
			return withLock(lockName, async () => {
				const ures = await upstream(method, url, headers, got.body);
				await relay(req, res, entry, ures);
			});
		}
		if (method === 'GET' || method === 'HEAD') {
			return withLock(lockName, async () => {
				const ures = await upstream(method, url, headers, null);
				await relay(req, res, entry, ures, { denyMissing: denyListBucket && !hasUploadId, bucket });
			});
		}
	}
	if (bucket !== null && key === null && method === 'GET' && Object.prototype.hasOwnProperty.call(query, 'uploads'))
		return listMultipartUploads(req, res, entry, bucket, query);
	if (bucket !== null && key === null && method === 'POST' && Object.prototype.hasOwnProperty.call(query, 'delete')) {
		/* S3 refuses DeleteObjects without an integrity check; s3rver does not ask. */
		const md5 = req.headers['content-md5'];
		const hasChecksum = Object.keys(req.headers).some((h) => h.startsWith('x-amz-checksum-'));
		if (!md5 && !hasChecksum) {
			return sendXmlError(req, res, entry, 400, 'InvalidRequest',
				{ Message: 'Missing required header for this request: Content-MD5' });
		}
		if (md5 && md5 !== crypto.createHash('md5').update(got.body).digest('base64'))
			return sendXmlError(req, res, entry, 400, 'BadDigest');
	}
	const ures = await upstream(method, url, headers, method === 'GET' || method === 'HEAD' ? null : got.body);
	await relay(req, res, entry, ures);
}

async function handle(req, res) {
	const url = req.url || '/';
	const q = url.indexOf('?');
	const rawPath = q < 0 ? url : url.slice(0, q);
	const rawQuery = q < 0 ? null : url.slice(q + 1);
	if (rawPath.startsWith(CONTROL_PREFIX))
		return handleControl(req, res, rawPath);

	const entry = {
		seq: ++nextReqId,
		time: new Date().toISOString(),
		conn: req.socket.walshipConnId,
		method: req.method,
		path: rawPath,
		query: rawQuery || '',
		status: null,
		code: null,
		/* the access key the request claims (checked or not: see status and code) */
		akid: (/Credential=([^/,\s]+)\//.exec(req.headers.authorization || '') || [])[1] || null,
		fault: null,
		dropped: false,
		truncated: false,
		aborted: false,
		/* the headers the request claims to have signed (SignedHeaders), null if unsigned */
		signed: ((/SignedHeaders=([^,\s]+)/.exec(req.headers.authorization || '') || [])[1] || null),
		headers: {
			'if-none-match': req.headers['if-none-match'] || null,
			'x-amz-content-sha256': req.headers['x-amz-content-sha256'] || null,
			'x-amz-date': req.headers['x-amz-date'] || null,
			'content-length': req.headers['content-length'] || null,
			range: req.headers.range || null,
			expect: req.headers.expect || null,
		},
	};
	if (entry.signed !== null)
		entry.signed = entry.signed.split(';');
	requestLog.push(entry);
	return handleS3(req, res, entry, rawPath, rawQuery);
}

/* ------------------------------------------------------------------ */
/* start */

async function main() {
	try {
		/* s3rver makes ListObjectsV2 continuation tokens with DES: OpenSSL 3 has it only in its legacy provider. */
		crypto.createCipheriv('des', Buffer.alloc(8), Buffer.alloc(8));
	} catch (e) {
		throw new Error('DES is unavailable, so s3rver would answer 500 to paged listings: run node with --openssl-legacy-provider');
	}
	fs.mkdirSync(opts.data, { recursive: true });
	const s3 = new S3rver({
		address: '127.0.0.1',
		port: 0,
		silent: true,
		directory: opts.data,
		vhostBuckets: false,
		configureBuckets: opts.buckets.map((name) => ({ name })),
	});
	const addr = await s3.run();
	upstreamPort = addr.port;

	const server = http.createServer((req, res) => {
		handle(req, res).catch((err) => {
			process.stderr.write(`proxy.js: ${req.method} ${req.url}: ${err.stack || err}\n`);
			const entry = { status: null };
			try {
				sendXmlError(req, res, entry, 500, 'InternalError', { Message: `test proxy: ${err.message}` });
			} catch (e) {
				res.destroy();
			}
		});
	});
	server.keepAliveTimeout = 30000;
	server.headersTimeout = 60000;
	server.requestTimeout = 0;
	server.on('connection', (sock) => {
		sock.walshipConnId = ++nextConnId;
	});
	await new Promise((resolve, reject) => {
		server.once('error', reject);
		server.listen(opts.port, '127.0.0.1', resolve);
	});
	process.stdout.write(`READY ${server.address().port}\n`);

	const stop = () => {
		server.close();
		s3.close(() => process.exit(0));
		setTimeout(() => process.exit(0), 2000).unref();
	};
	process.on('SIGTERM', stop);
	process.on('SIGINT', stop);
}

main().catch((err) => {
	process.stderr.write(`proxy.js: cannot start: ${err.message || err}\n`);
	process.exit(1);
});
