/*
 * sftp_util.c - the SFTP driver's server-free helpers (see sftp_util.h).
 */
#include "store/sftp_util.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "util/mem.h"

#define SFTP_DEFAULT_PORT 22
#define OPENSSH_KEY_BEGIN "-----BEGIN OPENSSH PRIVATE KEY-----"
#define OPENSSH_KEY_END   "-----END OPENSSH PRIVATE KEY-----"
#define OPENSSH_KEY_MAGIC "openssh-key-v1"

static int url_error(const char *url, const char *why, WsError *err)
{
	ws_error(err, WS_USAGE, "invalid SFTP repository URL \"%s\": %s", url, why);
	ws_error_hint(err, "Write it as sftp://user@host[:port]/absolute/path (host may be [IPv6]).");
	return WS_USAGE;
}

int sftp_url_parse(const char *url, SftpUrl *out, WsError *err)
{
	memset(out, 0, sizeof(*out));
	if (strncmp(url, "sftp://", 7) != 0)
		return url_error(url, "does not start with sftp://", err);
	const char *auth = url + 7;
	const char *slash = strchr(auth, '/');
	if (slash == NULL)
		return url_error(url, "no path after the host", err);
	size_t alen = (size_t)(slash - auth);
	const char *at = memrchr(auth, '@', alen);
	const char *hp = auth;
	int rc = 0;

	if (at != NULL) {
		if (memchr(auth, ':', (size_t)(at - auth)) != NULL) {
			/* The URL itself is not repeated: it holds a password. */
			ws_error(err, WS_USAGE,
				 "invalid SFTP repository URL: passwords in the URL are not supported");
			ws_error_hint(err,
				      "Remove the password from the URL; walship authenticates with keys "
				      "(sftp-key-file, ssh-agent or ~/.ssh/id_*).");
			return WS_USAGE;
		}
		if (at == auth)
			return url_error(url, "empty user name", err);
		out->user = xstrndup(auth, (size_t)(at - auth));
		hp = at + 1;
	}
	const char *hend = slash;
	const char *port = NULL;
	if (*hp == '[') {
		const char *close = memchr(hp, ']', (size_t)(slash - hp));
		if (close == NULL) {
			rc = url_error(url, "unclosed \"[\" around the host", err);
			goto done;
		}
		out->host = xstrndup(hp + 1, (size_t)(close - hp - 1));
		if (close + 1 < slash) {
			if (close[1] != ':') {
				rc = url_error(url, "unexpected characters after \"]\"", err);
				goto done;
			}
			port = close + 2;
		}
	} else {
		const char *colon = memchr(hp, ':', (size_t)(slash - hp));
		if (colon != NULL) {
			hend = colon;
			port = colon + 1;
		}
		out->host = xstrndup(hp, (size_t)(hend - hp));
	}
	if (out->host[0] == '\0') {
		rc = url_error(url, "no host", err);
		goto done;
	}
	for (const char *p = out->host; *p; p++) {
		if (isspace((unsigned char)*p) || *p == '/' || *p == '@' || *p == '%' || *p == '[' ||
		    *p == ']') {
			rc = url_error(url, "invalid character in the host", err);
			goto done;
		}
	}
	out->port = SFTP_DEFAULT_PORT;
	if (port != NULL) {
		long v = 0;
		if (port == slash) {
			rc = url_error(url, "empty port", err);
			goto done;
		}
		for (const char *p = port; p < slash; p++) {
			if (!isdigit((unsigned char)*p) || v > 65535) {
				v = -1;
				break;
			}
			v = v * 10 + (*p - '0');
		}
		if (v < 1 || v > 65535) {
			rc = url_error(url, "the port must be a number from 1 to 65535", err);
			goto done;
		}
		out->port = (int)v;
	}

	size_t plen = strlen(slash);
	while (plen > 1 && slash[plen - 1] == '/')
		plen--;
	out->path = xstrndup(slash, plen);

done:
	if (rc != 0)
		sftp_url_clear(out);
	return rc;
}

void sftp_url_clear(SftpUrl *u)
{
	free(u->user);
	free(u->host);
	free(u->path);
	memset(u, 0, sizeof(*u));
}

char *sftp_server_name(const char *host, int port)
{
	if (strchr(host, ':') != NULL)
		return xasprintf("[%s]:%d", host, port);
	return xasprintf("%s:%d", host, port);
}

char *sftp_url_display(const SftpUrl *u)
{
	bool v6 = strchr(u->host, ':') != NULL;
	char portbuf[16] = "";
	if (u->port != SFTP_DEFAULT_PORT)
		str_format(portbuf, sizeof(portbuf), ":%d", u->port);
	return xasprintf("sftp://%s%s%s%s%s%s%s", u->user ? u->user : "", u->user ? "@" : "", v6 ? "[" : "",
			 u->host, v6 ? "]" : "", portbuf, u->path);
}

char *sftp_shell_quote(const char *s)
{
	size_t n = 2;
	for (const char *p = s; *p; p++)
		n += *p == '\'' ? 4 : 1;
	char *out = xmalloc(n + 1);
	char *o = out;
	*o++ = '\'';
	for (const char *p = s; *p; p++) {
		if (*p == '\'') {
			memcpy(o, "'\\''", 4);
			o += 4;
		} else {
			*o++ = *p;
		}
	}
	*o++ = '\'';
	*o = '\0';
	return out;
}

char *sftp_knownhosts_name(const char *host, int port)
{
	if (port == SFTP_DEFAULT_PORT)
		return xstrdup(host);
	return xasprintf("[%s]:%d", host, port);
}

/* Decode base64 into a malloc'd buffer; NULL if invalid. */
static unsigned char *base64_decode(const char *in, size_t inlen, size_t *outlen)
{
	if (inlen == 0 || inlen % 4 != 0 || inlen > INT32_MAX)
		return NULL;
	unsigned char *out = xmalloc(inlen / 4 * 3 + 1);
	int n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)inlen);
	if (n < 0) {
		free(out);
		return NULL;
	}
	size_t len = (size_t)n;
	/* EVP_DecodeBlock counts the bytes padding stands for. */
	for (size_t i = inlen; i > 0 && in[i - 1] == '='; i--)
		len--;
	*outlen = len;
	return out;
}

/* "|1|salt|hash": HMAC-SHA1 keyed by salt of name equals hash. */
static bool hashed_matches(const char *field, size_t flen, const char *name)
{
	const char *salt = field + 3;
	const char *bar = memchr(salt, '|', flen - 3);
	if (bar == NULL)
		return false;
	const char *hash = bar + 1;
	size_t saltlen = 0, hashlen = 0;
	unsigned char *s = base64_decode(salt, (size_t)(bar - salt), &saltlen);
	unsigned char *h = base64_decode(hash, (size_t)(field + flen - hash), &hashlen);
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	bool ok = false;

	if (s != NULL && h != NULL && saltlen <= INT32_MAX &&
	    HMAC(EVP_sha1(), s, (int)saltlen, (const unsigned char *)name, strlen(name), mac, &maclen) !=
		    NULL)
		ok = maclen == hashlen && memcmp(mac, h, hashlen) == 0;
	free(s);
	free(h);
	return ok;
}

/*
 * OpenSSH's host patterns: "*" and "?" are the only wildcards ("[" is literal,
 * as in "[host]:port").  Iterative, with one backtrack point: on a mismatch
 * only the last "*" seen takes one more character, so the work is at most
 * the product of the two lengths (a recursive match is exponential in the
 * number of "*", and a hostile known_hosts line would hang the hook).
 */
static bool wild_match(const char *pat, const char *s)
{
	const char *star = NULL, *resume = NULL;
	while (*s != '\0') {
		if (*pat == '*') {
			star = pat++;
			resume = s;
		} else if (*pat != '\0' && (*pat == '?' || *pat == *s)) {
			pat++;
			s++;
		} else if (star != NULL) {
			pat = star + 1;
			s = ++resume;
		} else {
			return false;
		}
	}
	while (*pat == '*')
		pat++;
	return *pat == '\0';
}

bool sftp_knownhosts_field_matches(const char *field, const char *name)
{
	size_t flen = strlen(field);
	if (flen > 3 && strncmp(field, "|1|", 3) == 0)
		return hashed_matches(field, flen, name);

	bool matched = false;
	char *copy = xstrdup(field);
	char *lname = xstrdup(name);
	for (char *p = lname; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	for (char *save = NULL, *pat = strtok_r(copy, ",", &save); pat; pat = strtok_r(NULL, ",", &save)) {
		bool negate = pat[0] == '!';
		if (negate)
			pat++;
		for (char *p = pat; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		if (wild_match(pat, lname)) {
			if (negate) {
				matched = false;
				break;
			}
			matched = true;
		}
	}
	free(copy);
	free(lname);
	return matched;
}

bool sftp_knownhosts_split(char *line, SftpKnownHostsLine *out)
{
	char *save = NULL;
	char *p = line + strspn(line, " \t");
	memset(out, 0, sizeof(*out));
	if (*p == '\0' || *p == '#')
		return false;
	char *tok = strtok_r(p, " \t", &save);
	if (tok != NULL && tok[0] == '@') {
		out->marker = tok;
		tok = strtok_r(NULL, " \t", &save);
	}
	out->hosts = tok;
	out->type = tok ? strtok_r(NULL, " \t", &save) : NULL;
	out->blob = out->type ? strtok_r(NULL, " \t", &save) : NULL;
	return true;
}

char *sftp_base64(const unsigned char *data, size_t len)
{
	char *out = xmalloc((len + 2) / 3 * 4 + 1);
	/* EVP_EncodeBlock takes an int: the blobs encoded here are small. */
	EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}

char *sftp_fingerprint(const unsigned char *blob, size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (EVP_Digest(blob, len, md, &mdlen, EVP_sha256(), NULL) != 1)
		return xstrdup("SHA256:?");
	char *b64 = sftp_base64(md, mdlen);
	size_t n = strlen(b64);
	while (n > 0 && b64[n - 1] == '=')
		b64[--n] = '\0';
	char *out = xasprintf("SHA256:%s", b64);
	free(b64);
	return out;
}

uint32_t sftp_get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

void sftp_put_u32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

char *sftp_blob_type(const unsigned char *blob, size_t len)
{
	if (len < 4)
		return NULL;
	uint32_t n = sftp_get_u32(blob);
	if (n == 0 || n > len - 4 || n > 64)
		return NULL;
	for (uint32_t i = 0; i < n; i++)
		if (!isgraph(blob[4 + i]))
			return NULL;
	return xstrndup((const char *)blob + 4, n);
}

/* The cipher name of an "openssh-key-v1" key: "none" when not encrypted. */
static SftpKeyProtection openssh_protection(const char *text)
{
	const char *start = strstr(text, OPENSSH_KEY_BEGIN);
	const char *end = start ? strstr(start, OPENSSH_KEY_END) : NULL;
	if (end == NULL)
		return SFTP_KEY_UNKNOWN;
	start += strlen(OPENSSH_KEY_BEGIN);

	/* The header lives in the first base64 characters: decode enough of them, skipping line breaks. */
	char b64[128];
	size_t n = 0;
	for (const char *p = start; p < end && n < sizeof(b64) - 1; p++)
		if (!isspace((unsigned char)*p))
			b64[n++] = *p;
	n -= n % 4;
	size_t blen = 0;
	unsigned char *bin = base64_decode(b64, n, &blen);
	SftpKeyProtection res = SFTP_KEY_UNKNOWN;
	size_t mlen = sizeof(OPENSSH_KEY_MAGIC); /* with its NUL */
	if (bin != NULL && blen >= mlen + 4 && memcmp(bin, OPENSSH_KEY_MAGIC, mlen) == 0) {
		uint32_t clen = sftp_get_u32(bin + mlen);
		if (clen <= blen - mlen - 4)
			res = clen == 4 && memcmp(bin + mlen + 4, "none", 4) == 0 ? SFTP_KEY_PLAIN
										  : SFTP_KEY_ENCRYPTED;
	}
	free(bin);
	return res;
}

SftpKeyProtection sftp_key_protection(const char *text)
{
	if (strstr(text, OPENSSH_KEY_BEGIN) != NULL)
		return openssh_protection(text);
	if (strstr(text, "-----BEGIN ENCRYPTED PRIVATE KEY-----") != NULL)
		return SFTP_KEY_ENCRYPTED;
	const char *begin = strstr(text, "-----BEGIN ");
	if (begin == NULL || strstr(begin, "PRIVATE KEY-----") == NULL)
		return SFTP_KEY_UNKNOWN;
	/* Traditional PEM: "Proc-Type: 4,ENCRYPTED" in the headers. */
	return strstr(begin, "ENCRYPTED") != NULL ? SFTP_KEY_ENCRYPTED : SFTP_KEY_PLAIN;
}

void sftp_strv_add(char ***v, size_t *n, const char *s)
{
	*v = xrealloc(*v, (*n + 1) * sizeof(**v));
	(*v)[(*n)++] = xstrdup(s);
}

void sftp_strv_add_once(char ***v, size_t *n, const char *s)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp((*v)[i], s) == 0)
			return;
	sftp_strv_add(v, n, s);
}

void sftp_strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}
