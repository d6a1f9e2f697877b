#!/usr/bin/env bash
# Runs every test of caseroom against real servers: it installs what is missing
# (PostgreSQL, Redis, Chromium; with apt-get, as root), starts a throwaway
# PostgreSQL and Redis on free loopback ports, runs go vet and go test with the
# CASEROOM_TEST_* variables pointing at them, and stops and removes them after.
# Extra arguments go to `go test` (e.g. `-run TestStore ./chat/...`).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '== %s\n' "$*" >&2; }

find_pg_bin() {
	if command -v initdb >/dev/null 2>&1; then dirname "$(readlink -f "$(command -v initdb)")"; return; fi
	ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1
}

need=()
[ -n "$(find_pg_bin)" ] || need+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# A CJK font, so the browser tests' screenshots show the Chinese text.
fc-list 2>/dev/null | grep -qi "wenquanyi\|wqy" || need+=(fonts-wqy-microhei)
if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		log "missing ${need[*]}: run as root to install them, or install them yourself"; exit 1
	fi
	log "installing ${need[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
PGBIN=$(find_pg_bin)

free_port() {
	local p
	for _ in $(seq 1 200); do
		p=$(( 20000 + RANDOM % 30000 ))
		if ! (echo >/dev/tcp/127.0.0.1/$p) 2>/dev/null; then echo "$p"; return; fi
	done
	log "no free port found"; exit 1
}

work=$(mktemp -d /tmp/caseroom-test.XXXXXX)
chmod 755 "$work"
pg_pid="" ; redis_pid=""
cleanup() {
	set +e
	if [ -n "$pg_pid" ]; then as_pg "$PGBIN/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1; fi
	if [ -n "$redis_pid" ]; then kill "$redis_pid" 2>/dev/null; wait "$redis_pid" 2>/dev/null; fi
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

# initdb and postgres refuse to run as root: run them as the postgres user then.
as_pg() {
	if [ "$(id -u)" = 0 ]; then
		id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/sh postgres
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

pg_port=$(free_port)
mkdir -p "$work/pg" "$work/pgsock" "$work/pglog"
if [ "$(id -u)" = 0 ]; then chown postgres "$work/pg" "$work/pgsock" "$work/pglog"; fi
log "starting PostgreSQL on 127.0.0.1:$pg_port"
as_pg "$PGBIN/initdb" -D "$work/pg" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
# A throwaway server: fsync off only makes the tests faster, it changes no result.
as_pg "$PGBIN/pg_ctl" -D "$work/pg" -l "$work/pglog/pg.log" -w -t 60 \
	-o "-h 127.0.0.1 -p $pg_port -k $work/pgsock -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" start >/dev/null
pg_pid=1

redis_port=$(free_port)
log "starting Redis on 127.0.0.1:$redis_port"
redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no --protected-mode yes >"$work/redis.log" 2>&1 &
redis_pid=$!
for _ in $(seq 1 50); do (echo >/dev/tcp/127.0.0.1/$redis_port) 2>/dev/null && break; sleep 0.1; done

export CASEROOM_TEST_POSTGRES="postgres://postgres@127.0.0.1:$pg_port/postgres?sslmode=disable"
export CASEROOM_TEST_REDIS="redis://127.0.0.1:$redis_port/0"
export CASEROOM_TEST_CHROMIUM="$(command -v chromium)"
export CASEROOM_TEST_REQUIRE=1 # a suite whose server is missing fails instead of skipping

if ! kill -0 "$redis_pid" 2>/dev/null; then log "Redis did not start:"; cat "$work/redis.log" >&2; exit 1; fi

log "go vet"
go vet ./...
log "go test"
status=0
if [ $# -gt 0 ]; then
	go test -count=1 -timeout 20m "$@" || status=$?
else
	go test -count=1 -timeout 20m ./... || status=$?
fi
if [ "$status" != 0 ]; then
	# Say whether the throwaway servers were still there, for a failure that
	# looks like theirs.
	kill -0 "$redis_pid" 2>/dev/null || { log "Redis had exited; its log:"; tail -20 "$work/redis.log" >&2; }
	as_pg "$PGBIN/pg_ctl" -D "$work/pg" status >/dev/null 2>&1 || { log "PostgreSQL had exited; its log:"; tail -20 "$work/pglog/pg.log" >&2; }
fi
exit "$status"
