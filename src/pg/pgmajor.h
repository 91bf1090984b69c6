/*
 * pgmajor.h - comparing PostgreSQL major versions as walship holds them
 * (pg_version_read, walship.json): 96 for 9.6, else 10 to 17.  96 is
 * numerically above 17, so a plain "major < 12" takes 9.6 for a new version.
 */
#ifndef WALSHIP_PG_PGMAJOR_H
#define WALSHIP_PG_PGMAJOR_H

#include <stdbool.h>

/* Whether major (96 for 9.6) is older than PostgreSQL than (10 to 17). */
static inline bool pg_major_before(int major, int than)
{
	return (major == 96 ? 9 : major) < than;
}

#endif
