# tests/matrix/lib.sh: what mkroot and run both need (sourced, not run).

# Unmount everything mounted at or below $1, deepest first (lazily: a test's process may linger).
umount_below() {
	local m
	for m in $(awk -v r="$1" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/mounts | sort -r); do
		umount -l "$m" 2>/dev/null || true
	done
}
