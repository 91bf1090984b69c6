/*
 * replay.c - run a fuzz harness over files, without libFuzzer.
 *
 *   replay-<name> DIR|FILE...
 *
 * Feeds every regular file (directories: their files, in name order) to
 * LLVMFuzzerTestOneInput once, after LLVMFuzzerInitialize when the harness
 * has one.  Built with the ordinary compiler and AddressSanitizer and
 * UndefinedBehaviorSanitizer, it is how `make test` proves that every input
 * in tests/fuzz/corpus/, past crashes included, still passes.  A failing
 * input is named before the sanitizer's report ends the process.
 */
#include <dirent.h>
#include <errno.h>
#include <sanitizer/common_interface_defs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"
#include "util/fsutil.h"
#include "util/mem.h"

/* Inputs larger than this are not fuzz inputs (libFuzzer's default -max_len is far below). */
#define REPLAY_MAX (64 * 1024 * 1024)

__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

static void name_current(void)
{
	if (fuzz_input_name != NULL)
		fprintf(stderr, "replay: the failing input is \"%s\"\n", fuzz_input_name);
}

static int run_file(const char *path)
{
	char *buf = NULL;
	size_t len = 0;
	WsError err;
	if (fs_read_small(path, REPLAY_MAX, &buf, &len, &err) != 0) {
		fprintf(stderr, "replay: %s\n", err.msg);
		return -1;
	}
	/* An exact-size copy: a read past the input's end must meet the sanitizer, not slack. */
	unsigned char *data = xmalloc(len > 0 ? len : 1);
	memcpy(data, buf, len);
	free(buf);
	fuzz_input_name = path;
	LLVMFuzzerTestOneInput(data, len);
	fuzz_input_name = NULL;
	free(data);
	return 0;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file of dir in name order; returns how many ran, -1 on an error. */
static int run_dir(const char *dir)
{
	DIR *d = opendir(dir);
	if (d == NULL) {
		fprintf(stderr, "replay: could not open \"%s\": %s\n", dir, strerror(errno));
		return -1;
	}
	char **names = NULL;
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		names = xrealloc(names, (n + 1) * sizeof(*names));
		names[n++] = xasprintf("%s/%s", dir, e->d_name);
	}
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof(*names), name_cmp);
	int ran = 0;
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		if (ran >= 0 && stat(names[i], &st) == 0 && S_ISREG(st.st_mode))
			ran = run_file(names[i]) == 0 ? ran + 1 : -1;
		free(names[i]);
	}
	free(names);
	return ran;
}

int main(int argc, char **argv)
{
	int total = 0;
	if (argc < 2) {
		fprintf(stderr, "usage: %s DIR|FILE...\n", argv[0]);
		return 2;
	}
	__sanitizer_set_death_callback(name_current);
	if (LLVMFuzzerInitialize != NULL)
		LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		struct stat st;
		int ran;
		if (stat(argv[i], &st) != 0) {
			fprintf(stderr, "replay: \"%s\": %s\n", argv[i], strerror(errno));
			return 1;
		}
		ran = S_ISDIR(st.st_mode) ? run_dir(argv[i]) : run_file(argv[i]) == 0 ? 1 : -1;
		if (ran < 0)
			return 1;
		total += ran;
	}
	if (total == 0) {
		fprintf(stderr, "replay: no inputs in %s\n", argv[1]);
		return 1;
	}
	printf("%s: %d inputs passed\n", argv[0], total);
	return 0;
}
