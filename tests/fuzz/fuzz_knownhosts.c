/*
 * fuzz_knownhosts.c - known_hosts lines and host patterns
 * (store/sftp_util.c), read by every SFTP connection before the server's key
 * is trusted.
 *
 * Input: the host name to look for on the first line (as
 * sftp_knownhosts_name writes it: "host" or "[host]:port"), then the lines
 * of a known_hosts file.  Each line is split as the SFTP driver splits it,
 * and its host field matched against the name; a plain (unhashed) field
 * must match a name regardless of case.  A pattern of many "*" must not
 * take exponential time (libFuzzer's -timeout catches that).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "store/sftp_util.h"
#include "util/mem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *name, *text;
	fuzz_split(data, size, &name, &text);
	char *upper = xstrdup(name);
	for (char *p = upper; *p; p++)
		*p = (char)toupper((unsigned char)*p);

	for (char *line = text, *next; line != NULL; line = next) {
		char *nl = strchr(line, '\n');
		next = nl ? nl + 1 : NULL;
		if (nl)
			*nl = '\0';
		SftpKnownHostsLine kl;
		if (!sftp_knownhosts_split(line, &kl) || kl.hosts == NULL)
			continue;
		FUZZ_CHECK(kl.hosts[0] != '\0' && strpbrk(kl.hosts, " \t") == NULL);
		FUZZ_CHECK(kl.marker == NULL || kl.marker[0] == '@');
		bool m = sftp_knownhosts_field_matches(kl.hosts, name);
		if (strncmp(kl.hosts, "|1|", 3) != 0)
			FUZZ_CHECK(m == sftp_knownhosts_field_matches(kl.hosts, upper));
	}
	free(upper);
	free(name);
	free(text);
	return 0;
}
