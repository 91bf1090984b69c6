/*
 * cleanup.h - signal handling for the hook programs.
 *
 * SIGPIPE is ignored (a dropped socket must not kill an archiver).  On SIGTERM
 * or SIGINT the registered temporary files are unlinked and the process exits
 * at once with the code given to cleanup_init: PostgreSQL sends SIGTERM at
 * shutdown and expects prompt exit.  Registration is async-signal-safe:
 * paths are copied into fixed slots.
 */
#ifndef WALSHIP_UTIL_CLEANUP_H
#define WALSHIP_UTIL_CLEANUP_H

#include <sys/types.h>

#define CLEANUP_SLOTS    40
#define CLEANUP_PATH_MAX 4096

/* Install the handlers; exit_code is used when a signal ends the process. */
void cleanup_init(int exit_code);

/* Remember a temp file to unlink on a signal; returns a slot id (>= 0) or -1 if full. */
int cleanup_register(const char *path);
/* Forget a slot (after rename or unlink). */
void cleanup_unregister(int slot);

/*
 * Create a temporary file as open(path, O_CREAT | O_EXCL | flags, mode)
 * would, registered for removal on a signal, so that no signal, in this
 * thread or another, leaves it behind (see cleanup.c).  A path ending in
 * "XXXXXX" is a template, filled with random characters as by mkstemp(3)
 * (path is changed).  The descriptor and *slot (-1 when no slot was free or
 * the path is too long: only the removal on a signal is lost), or -1 with
 * errno (EINTR once a signal is ending the process).
 */
int cleanup_create(char *path, int flags, mode_t mode, int *slot);

/*
 * Hold SIGTERM/SIGINT back around a step that must not be cut in two (the
 * final rename of a fetched file), and change the exit code a signal gives
 * from then on (0 once the work is done: the signal then ends a process
 * that already succeeded).
 */
void cleanup_hold(void);
void cleanup_release(void);
void cleanup_set_exit_code(int exit_code);

/*
 * The exit code of a fatal error that cannot be returned to main (out of
 * memory, no randomness): the program's contract code.  1 unless set;
 * walship-fetch sets 200, or 1 once it knows it serves a standby.
 */
void cleanup_set_fatal_code(int exit_code);

/*
 * Print "<program>: error: <message>" without allocating, remove the
 * registered temp files as a signal would, and exit with the fatal code.
 * Every exit that bypasses main's return goes through here, so that no
 * program answers with a code its contract does not give (for
 * walship-fetch, 1 would read as "not found").
 */
_Noreturn void cleanup_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Non-zero once SIGTERM/SIGINT arrived (when handlers are set to not exit, see below). */
int cleanup_interrupted(void);

#endif
