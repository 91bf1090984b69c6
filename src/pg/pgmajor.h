/*
 * pgmajor.h - PostgreSQL major versions as walship holds them in memory: the
 * server_version_num of the major's first release, 90600 for 9.6, 100000 for
 * 10 ... 170000 for 17, so they compare as plain numbers.  Their text form
 * ("9.6", "15": walship.json, manifest.json, epoch ids) is pg_major_str's.
 */
#ifndef WALSHIP_PG_PGMAJOR_H
#define WALSHIP_PG_PGMAJOR_H

#include <stdbool.h>

#define PG_MAJOR_9_6    90600
#define PG_MAJOR(n)     ((n)*10000) /* n from 10 on */
#define PG_MAJOR_NEWEST PG_MAJOR(17)

/* The major a server_version_num (PQserverVersion) belongs to: 90605 -> 90600, 150002 -> 150000. */
static inline int pg_major_of_version_num(int num)
{
	return num >= PG_MAJOR(10) ? num / 10000 * 10000 : num / 100 * 100;
}

/* Whether v is one of the majors walship supports: 9.6 or 10 to 17. */
static inline bool pg_major_supported(int v)
{
	return v == PG_MAJOR_9_6 || (v >= PG_MAJOR(10) && v <= PG_MAJOR_NEWEST && v % 10000 == 0);
}

/* Up to 11 recovery settings live in recovery.conf; from 12 in postgresql.auto.conf with signal files. */
static inline bool pg_has_recovery_conf(int v)
{
	return v < PG_MAJOR(12);
}

/* recovery_target_lsn came with 10. */
static inline bool pg_has_recovery_target_lsn(int v)
{
	return v >= PG_MAJOR(10);
}

/* Up to 14 BASE_BACKUP's tar streams have no end-of-archive blocks (pg_basebackup added them). */
static inline bool pg_base_backup_tar_unterminated(int v)
{
	return v < PG_MAJOR(15);
}

/* Up to 12 recovery that runs out of WAL before its target promotes; from 13 it stops with FATAL. */
static inline bool pg_promotes_before_unreached_target(int v)
{
	return v < PG_MAJOR(13);
}

#endif
