#!/bin/bash
# /docker-entrypoint-initdb.d/50-walship-init.sh: run once, as postgres, by the image's entrypoint
# after initdb made a new cluster on an empty data volume.  With a repository configured
# (WALSHIP_REPO, or repo in /etc/walship/walship.conf: WALSHIP_DOCKER_REPO, as
# walship-docker-entrypoint found it) it creates the repository for this cluster:
# walship init, with --encrypt when WALSHIP_ENCRYPT=yes.  WALSHIP_INIT=no leaves it to you.
# walship init never replaces a repository: one that belongs to another cluster stops the first
# start here, before anything is archived into it.
set -euo pipefail

if [ -z "${WALSHIP_DOCKER_REPO:-}" ]; then
	exit 0
fi
case ${WALSHIP_INIT:-yes} in
no | off | false | 0)
	echo "walship-init: WALSHIP_INIT=$WALSHIP_INIT: no walship init (run it before the first WAL file is archived)"
	exit 0
	;;
esac
args=(--pgdata="$PGDATA")
case ${WALSHIP_ENCRYPT:-no} in
yes | on | true | 1) args+=(--encrypt) ;;
esac
if ! walship init "${args[@]}"; then
	cat >&2 <<-'EOM'
		walship-init: walship init failed for this new cluster (the message above says why).
		  A repository that already holds walship.json belongs to another cluster: mount this
		  cluster's own repository volume (or an empty one), or set WALSHIP_INIT=no and set the
		  repository up yourself.
	EOM
	exit 1
fi
