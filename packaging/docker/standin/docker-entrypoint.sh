#!/usr/bin/env bash
# docker-entrypoint.sh of walship's stand-in for the official postgres image: what that image's
# entrypoint does, in short.  Run as root, it makes PGDATA and the socket directory postgres's and
# runs itself again as postgres (gosu).  As postgres, on an empty PGDATA: initdb (POSTGRES_USER,
# POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE, POSTGRES_INITDB_ARGS), a "host all all all" line
# with POSTGRES_HOST_AUTH_METHOD (default scram-sha-256), a server on the socket only with the
# command's own options, POSTGRES_DB created, /docker-entrypoint-initdb.d/* run (*.sh: run when
# executable, else sourced; *.sql: psql), the server stopped.  Then the command, usually postgres.
set -Eeo pipefail

# VAR from VAR_FILE (Docker secrets), never both.
file_env() {
	local var=$1 fvar=${1}_FILE def=${2:-}
	if [ -n "${!var:-}" ] && [ -n "${!fvar:-}" ]; then
		echo "error: both $var and $fvar are set (but are exclusive)" >&2
		exit 1
	fi
	local val=$def
	if [ -n "${!var:-}" ]; then
		val=${!var}
	elif [ -n "${!fvar:-}" ]; then
		val=$(<"${!fvar}")
	fi
	export "$var"="$val"
	unset "$fvar"
}

if [ "${1:0:1}" = '-' ]; then
	set -- postgres "$@"
fi

if [ "$1" = postgres ]; then
	# Read here, as root first (a secret file may be root's), and exported through gosu.
	file_env POSTGRES_PASSWORD
	file_env POSTGRES_USER postgres
	file_env POSTGRES_DB "$POSTGRES_USER"
	file_env POSTGRES_INITDB_ARGS
fi

if [ "$1" = postgres ] && [ "$(id -u)" = 0 ]; then
	mkdir -p "$PGDATA"
	chmod 00700 "$PGDATA" || :
	find "$PGDATA" \! -user postgres -exec chown postgres:postgres '{}' +
	mkdir -p /var/run/postgresql
	chown postgres:postgres /var/run/postgresql
	chmod 3777 /var/run/postgresql
	exec gosu postgres "${BASH_SOURCE[0]}" "$@"
fi

if [ "$1" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
	auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
	if [ -z "$POSTGRES_PASSWORD" ] && [ "$auth" != trust ]; then
		cat >&2 <<-'EOM'
			Error: Database is uninitialized and superuser password is not specified.
			       You must specify POSTGRES_PASSWORD to a non-empty value for the
			       superuser. For example, "-e POSTGRES_PASSWORD=password" on "docker run".
		EOM
		exit 1
	fi
	# shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is words, as in the official image
	initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") $POSTGRES_INITDB_ARGS
	printf '\nhost all all all %s\n' "$auth" >>"$PGDATA/pg_hba.conf"

	shift
	opts=$(printf '%q ' "$@" -c "listen_addresses=" -p "${PGPORT:-5432}")
	PGUSER=$POSTGRES_USER pg_ctl -D "$PGDATA" -o "$opts" -w start
	export PGUSER=$POSTGRES_USER PGDATABASE=postgres PGHOST=/var/run/postgresql
	if [ "$POSTGRES_DB" != postgres ]; then
		psql -v ON_ERROR_STOP=1 -q -c "CREATE DATABASE \"$POSTGRES_DB\""
	fi
	for f in /docker-entrypoint-initdb.d/*; do
		case $f in
		*.sh)
			if [ -x "$f" ]; then
				echo "$0: running $f"
				"$f"
			else
				echo "$0: sourcing $f"
				# shellcheck disable=SC1090
				. "$f"
			fi
			;;
		*.sql)
			echo "$0: running $f"
			psql -v ON_ERROR_STOP=1 -d "$POSTGRES_DB" -f "$f"
			;;
		*)
			if [ -e "$f" ]; then
				echo "$0: ignoring $f"
			fi
			;;
		esac
	done
	pg_ctl -D "$PGDATA" -m fast -w stop
	unset PGUSER PGDATABASE PGHOST
	set -- postgres "$@"
	echo
	echo 'PostgreSQL init process complete; ready for start up.'
	echo
fi

exec "$@"
