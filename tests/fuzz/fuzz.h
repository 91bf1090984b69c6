/*
 * fuzz.h - what the fuzz harnesses share (tests/fuzz/README.md).
 *
 * Each tests/fuzz/fuzz_<name>.c defines LLVMFuzzerTestOneInput for one
 * parser of outside input, and LLVMFuzzerInitialize when it needs set-up.
 * The same file is linked either with libFuzzer (make fuzz) or with
 * replay.c, which feeds it the committed corpus (make test).
 *
 * A harness reports a bug the sanitizers cannot see (a round trip that does
 * not reproduce its value, a file outside the destination) with
 * FUZZ_CHECK: it aborts, which both drivers count as a crash.
 */
#ifndef WALSHIP_TESTS_FUZZ_H
#define WALSHIP_TESTS_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "repo/crypt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Abort with the condition and the harness's line when cond is false. */
#define FUZZ_CHECK(cond)                                                                                     \
	do {                                                                                                 \
		if (!(cond))                                                                                 \
			fuzz_fail(__FILE__, __LINE__, #cond);                                                \
	} while (0)

/* The file being run, when replay.c runs it (libFuzzer names its inputs itself). */
extern const char *fuzz_input_name;

__attribute__((noreturn)) void fuzz_fail(const char *file, int line, const char *what);

/* Errors only: parsers that warn about what they refuse would flood the fuzzer's output. */
void fuzz_quiet(void);

/* A malloc'd NUL-terminated copy of the input (the parser sees it up to the first NUL, if any). */
char *fuzz_cstr(const uint8_t *data, size_t size);

/*
 * Split the input at its first newline into two NUL-terminated malloc'd
 * strings (*first without the newline; *rest empty when there is none).
 * For parsers that take two strings, such as a name and a text.
 */
void fuzz_split(const uint8_t *data, size_t size, char **first, char **rest);

/*
 * A private scratch directory for this process (made at the first call,
 * removed at exit): under /dev/shm when it exists, where fsync costs
 * nothing, else under $TMPDIR or /tmp.
 */
const char *fuzz_scratch(void);

/* Remove path and everything below it (never following symbolic links); missing is fine. */
void fuzz_rm_tree(const char *path);

/* Write len bytes to path (created 0600, or truncated). */
void fuzz_write_file(const char *path, const void *buf, size_t len);

/* The largest content an object harness decodes (a zstd frame may expand far beyond its input). */
#define FUZZ_OBJECT_MAX (8u << 20)

/*
 * Decode an object image as walship-fetch does (repo/object.c), with key
 * and name (NULL: an unencrypted repository), twice with one decoder: whole,
 * then after a reset in chunks of a size taken from the input's length.
 * Both must give the same answer; a decoded object must account for every
 * content byte written out and every stored byte read.  Returns the
 * decoder's answer.
 */
int fuzz_object_decode(const uint8_t *data, size_t size, const CryptKey *key, const char *name);

#endif
