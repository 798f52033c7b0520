#!/usr/bin/env bash
# Fuzzes the HTTP surface from the OpenAPI document with schemathesis (pinned), against the real
# binary on a throwaway SQLite file:
#   1. negative mode: every generated request violates the schema, so every one must be refused,
#      and the visible state (every GET orders / GET shipments answer) must not change;
#   2. positive mode: schema-valid requests must never get a server error.
# Figures come from the server's own /metrics: requests answered and 5xx among them.
# The run fails when schemathesis did not run or reported a failure, when fewer requests than
# expected were answered, when the server exited, or when Consign logged a panic or an error
# (actix logging a malformed request it refused is not one).
# Usage: tests/fuzz/schemathesis.sh [EXAMPLES_PER_OPERATION]   (default 300)
set -euo pipefail
cd "$(dirname "$0")/../.."
version=4.32.5
examples=${1:-300}
target=${CARGO_TARGET_DIR:-target}
venv=${CONSIGN_FUZZ_VENV:-$target/schemathesis-$version}
if [ ! -x "$venv/bin/st" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "schemathesis==$version"
fi
bin=${CONSIGN_BIN:-$target/debug/consign}
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
key=csk_fuzz-key-0000000000000000000000
metrics_token=fuzz-metrics-token
base="http://127.0.0.1:$port"
CONSIGN_LISTEN=127.0.0.1:$port DATABASE_URL="sqlite://$work/fuzz.db" CONSIGN_API_KEY=$key \
  CONSIGN_RATE_LIMIT=0 CONSIGN_AUTH_FAILURE_LIMIT=0 CONSIGN_METRICS_TOKEN=$metrics_token \
  CONSIGN_MAIL_DIR="$work/mail" RUST_LOG=error "$bin" >"$work/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do curl -sf "$base/readyz" >/dev/null && break; sleep 0.1; done
curl -sf "$base/readyz" >/dev/null || { echo "the server did not start:"; cat "$work/server.log"; exit 1; }
for order in 1 2 3; do
  curl -sf -H "API-Authorization: $key" -H 'Content-Type: application/json' "$base/api/order/order" -d "{\"order\": $order, \"currency\": \"SEK\", \"email\": \"f$order@example.com\", \"products\": [{\"sku\": \"A\", \"qty\": 5, \"price\": \"10.00\", \"vat\": \"25\"}], \"payment\": {\"provider\": \"sandbox\", \"reference\": \"auth-$order\", \"amount\": \"50.00\"}}" >/dev/null
done
curl -sf -H "API-Authorization: $key" -H 'Content-Type: application/json' "$base/api/order/shipments" -d '{"order": 1, "products": {"1": 1}, "capture": false}' >/dev/null

# Document links carry a token that expires, so it changes with the clock: leave it out.
visible() {
  {
    curl -sf -H "API-Authorization: $key" "$base/api/order/orders?limit=1000"
    for status in goodtogo inprogress completed; do
      curl -sf -H "API-Authorization: $key" "$base/api/order/shipments?status=$status"
    done
  } | sed 's/token=[0-9a-f.]*//g'
}
counts() {
  curl -sf -H "Authorization: Bearer $metrics_token" "$base/metrics" | awk '/^consign_http_requests_total/ { n += $NF; if ($0 ~ /outcome="5/) e += $NF } END { printf "%d %d\n", n, e }'
}

st() {
  "$venv/bin/st" run "$base/openapi.json" --url "$base" -H "API-Authorization: $key" \
    --checks not_a_server_error --max-examples "$examples" --seed 20261125 "$@"
}

read -r before_requests before_errors < <(counts)
state_before=$(visible)
negative_status=0
st --mode negative --phases fuzzing >"$work/negative.txt" 2>&1 || negative_status=$?
state_after=$(visible)
read -r mid_requests mid_errors < <(counts)
positive_status=0
st --mode positive >"$work/positive.txt" 2>&1 || positive_status=$?
read -r after_requests after_errors < <(counts)

negative=$((mid_requests - before_requests))
positive=$((after_requests - mid_requests))
changed=0
[ "$state_before" = "$state_after" ] || changed=1
# Ten operations: each mode must have answered a good share of what was asked of it.
expected=$((examples * 10 / 4))
alive=1
kill -0 "$pid" 2>/dev/null || alive=0
panics=$(grep -c -E "panicked|ERROR consign" "$work/server.log" || true)
echo "schemathesis $version: negative requests $negative, positive requests $positive, total $((negative + positive))"
echo "schemathesis exit status: negative $negative_status, positive $positive_status"
echo "5xx answers: $((after_errors - before_errors))"
echo "visible state changes from rejected (negative) requests: $changed"
echo "server alive at the end: $alive; panics and errors in its log: $panics"
failed=0
[ "$negative_status" -eq 0 ] && [ "$positive_status" -eq 0 ] || { echo "FAIL: schemathesis reported failures or did not run"; failed=1; }
[ "$negative" -ge "$expected" ] && [ "$positive" -ge "$expected" ] || { echo "FAIL: fewer than $expected requests in a mode"; failed=1; }
[ $((after_errors - before_errors)) -eq 0 ] || { echo "FAIL: server errors"; failed=1; }
[ "$changed" -eq 0 ] || { echo "FAIL: a rejected request changed the state"; failed=1; }
[ "$alive" -eq 1 ] || { echo "FAIL: the server exited"; failed=1; }
[ "$panics" -eq 0 ] || { echo "FAIL: the server logged panics or errors"; grep -E "panicked|ERROR consign" "$work/server.log" | head -n 20; failed=1; }
if [ "$failed" -ne 0 ]; then
  tail -n 40 "$work/negative.txt" "$work/positive.txt"
  exit 1
fi
