#!/usr/bin/env bash
# Instructions per create-shipment, counted by valgrind's callgrind on the release binary:
# one run imports an order and creates 20 + N shipments, another 20; the difference divided by
# N is the cost of one create-shipment (HTTP, JSON, auth, reserve, capture, settle). The first
# 20 open the connections the pool opens on demand, in both runs, so that cost is in neither.
# With `complete`, each step creates a shipment uncaptured and completes it (`PUT shipment`:
# the capture's start, the capture, the settle with the changes that waited for it).
# On SQLite it also prints the writer thread's own count (each thread is counted apart).
# Usage: bench/callgrind.sh [N] [sqlite|postgres] [create|complete]   (needs valgrind; build
# first: cargo build --release -p consign-server). With `postgres`, each run gets a throwaway
# database on the server CALLGRIND_POSTGRES names (default postgres://postgres@127.0.0.1:5432;
# needs psql). CALLGRIND_BINARY names another consign binary (default target/release/consign).
# CALLGRIND_LOG is the server's log filter (default error; `info`, the server's default, also
# counts the access log line of every request).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-50}
backend=${2:-sqlite}
path=${3:-create}
server=${CALLGRIND_POSTGRES:-postgres://postgres@127.0.0.1:5432}
bin=${CALLGRIND_BINARY:-target/release/consign}
work=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
key=csk_callgrind-key-000000000000000

# One step of the measured path: a create-shipment, or a shipment created uncaptured, then
# completed.
step() {
  local port=$1 base="http://127.0.0.1:$1/api/order"
  local headers=(-H "API-Authorization: $key" -H 'Content-Type: application/json')
  if [ "$path" = complete ]; then
    local created id
    created=$(curl -sf "${headers[@]}" "$base/shipments" -d '{"order": 1, "products": {"1": 1}, "capture": false}')
    id=$(printf '%s' "$created" | grep -o '"shipment":"[^"]*"' | head -1 | cut -d'"' -f4)
    curl -sf -X PUT "${headers[@]}" "$base/shipment" -d "{\"shipment\": \"$id\", \"tracking\": \"T1\"}" >/dev/null
  else
    curl -sf "${headers[@]}" "$base/shipments" -d '{"order": 1, "products": {"1": 1}}' >/dev/null
  fi
}

# Prints the whole process's count, then the SQLite writer thread's (0 without one).
run() {
  local label=$1 steps=$2 port=$3
  local url="sqlite://$work/$label.db" name="consign_callgrind_${label}_$$"
  if [ "$backend" = postgres ]; then
    psql "$server/postgres" -qc "DROP DATABASE IF EXISTS $name" -c "CREATE DATABASE $name" >/dev/null
    url="$server/$name"
  fi
  CONSIGN_LISTEN=127.0.0.1:$port DATABASE_URL="$url" CONSIGN_API_KEY=$key \
    CONSIGN_MAIL_DIR="$work/mail" CONSIGN_WORKERS=1 RUST_LOG=${CALLGRIND_LOG:-error} \
    valgrind --tool=callgrind --separate-threads=yes \
    --callgrind-out-file="$work/$label.out" "$bin" >/dev/null 2>&1 &
  local pid=$!
  for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  # Warm up: one order, one step (first-time costs are not per request).
  curl -sf -H "API-Authorization: $key" -H 'Content-Type: application/json' "http://127.0.0.1:$port/api/order/order" \
    -d '{"order": 1, "currency": "SEK", "email": "a@example.com", "products": [{"sku": "A", "qty": 100000, "price": "10.00", "vat": "25"}], "payment": {"provider": "sandbox", "reference": "auth-1", "amount": "1000000.00"}}' >/dev/null
  step "$port"
  for _ in $(seq 1 "$steps"); do
    step "$port"
  done
  kill -TERM "$pid"; wait "$pid" || true
  [ "$backend" != postgres ] || psql "$server/postgres" -qc "DROP DATABASE $name" >/dev/null
  local total writer_file writer=0
  total=$(cat "$work/$label.out"-* | awk '/^summary:/ { s += $2 } END { print s }')
  # The writer thread is the one that runs the queued writes (the release build inlines its
  # loop, `writer::serve`, so that name is in no thread's profile).
  writer_file=$(grep -l 'as consign_db::writer::Job>::run' "$work/$label.out"-* | head -1 || true)
  [ -z "$writer_file" ] || writer=$(awk '/^summary:/ { print $2; exit }' "$writer_file")
  echo "$total $writer"
}

read -r base base_writer < <(run base 20 18931)
read -r loaded loaded_writer < <(run loaded $((n + 20)) 18932)
what="create-shipment"
[ "$path" != complete ] || what="uncaptured create-shipment and its complete"
echo "instructions: base $base, with $n more steps $loaded"
echo "per $what: $(( (loaded - base) / n )) instructions"
[ "$backend" != sqlite ] || echo "of which the SQLite writer thread: $(( (loaded_writer - base_writer) / n ))"
[ -z "${KEEP:-}" ] || echo "callgrind files kept in $work"
