#!/usr/bin/env bash
# Instructions per create-shipment, counted by valgrind's callgrind on the release binary:
# one run imports an order and creates 20 + N shipments, another 20; the difference divided by
# N is the cost of one create-shipment (HTTP, JSON, auth, reserve, capture, settle). The first
# 20 open the connections the pool opens on demand, in both runs, so that cost is in neither.
# Usage: bench/callgrind.sh [N] [sqlite|postgres]   (needs valgrind; build first:
# cargo build --release -p consign-server). With `postgres`, each run gets a throwaway database
# on the server CALLGRIND_POSTGRES names (default postgres://postgres@127.0.0.1:5432; needs psql).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-50}
backend=${2:-sqlite}
server=${CALLGRIND_POSTGRES:-postgres://postgres@127.0.0.1:5432}
bin=target/release/consign
work=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
key=csk_callgrind-key-000000000000000

run() {
  local label=$1 creates=$2 port=$3
  local url="sqlite://$work/$label.db" name="consign_callgrind_${label}_$$"
  if [ "$backend" = postgres ]; then
    psql "$server/postgres" -qc "DROP DATABASE IF EXISTS $name" -c "CREATE DATABASE $name" >/dev/null
    url="$server/$name"
  fi
  CONSIGN_LISTEN=127.0.0.1:$port DATABASE_URL="$url" CONSIGN_API_KEY=$key \
    CONSIGN_MAIL_DIR="$work/mail" CONSIGN_WORKERS=1 RUST_LOG=error \
    valgrind --tool=callgrind --callgrind-out-file="$work/$label.out" "$bin" >/dev/null 2>&1 &
  local pid=$!
  for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  # Warm up: one order, one shipment (first-time costs are not per request).
  curl -sf -H "API-Authorization: $key" -H 'Content-Type: application/json' "http://127.0.0.1:$port/api/order/order" \
    -d '{"order": 1, "currency": "SEK", "email": "a@example.com", "products": [{"sku": "A", "qty": 100000, "price": "10.00", "vat": "25"}], "payment": {"provider": "sandbox", "reference": "auth-1", "amount": "1000000.00"}}' >/dev/null
  curl -sf -H "API-Authorization: $key" -H 'Content-Type: application/json' "http://127.0.0.1:$port/api/order/shipments" -d '{"order": 1, "products": {"1": 1}}' >/dev/null
  for _ in $(seq 1 "$creates"); do
    curl -sf -H "API-Authorization: $key" -H 'Content-Type: application/json' "http://127.0.0.1:$port/api/order/shipments" -d '{"order": 1, "products": {"1": 1}}' >/dev/null
  done
  kill -TERM "$pid"; wait "$pid" || true
  [ "$backend" != postgres ] || psql "$server/postgres" -qc "DROP DATABASE $name" >/dev/null
  callgrind_annotate "$work/$label.out" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }'
}

base=$(run base 20 18931)
loaded=$(run loaded $((n + 20)) 18932)
echo "instructions: base $base, with $n creates $loaded"
echo "per create-shipment: $(( (loaded - base) / n )) instructions"
[ -z "${KEEP:-}" ] || echo "callgrind files kept in $work"
