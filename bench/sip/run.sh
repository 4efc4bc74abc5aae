#!/usr/bin/env bash
# SIP call set-up benchmark (issue #12): the release `callguard serve` with SIP on, sipp placing
# a bounded number of calls over loopback, all inside a private network namespace (unshare -n,
# only lo; needs root). Each call is answered (interaction opened, audited), hears the recording
# notice, is recorded from the notice's end, and hangs up after HOLD_MS. Reports sipp's
# successful/failed calls, the achieved set-up rate, and the server's CPU (utime+stime from
# /proc) per call.
#   bench/sip/run.sh [CALLS] [RATE] [HOLD_MS]      defaults: 500 calls, 100 calls/s, 4000 ms
set -euo pipefail
cd "$(dirname "$0")/../.."
CALLS=${1:-500} RATE=${2:-100} HOLD_MS=${3:-4000}
if [ -z "${CALLGUARD_BENCH_INSIDE:-}" ]; then
  target="${CARGO_TARGET_DIR:-target}"
  [ -n "${BIN:-}" ] || { cargo build --release -p callguard >&2; BIN="$PWD/$target/release/callguard"; }
  exec env CALLGUARD_BENCH_INSIDE=1 BIN="$BIN" unshare -n -- "$0" "$CALLS" "$RATE" "$HOLD_MS"
fi
ip link set lo up
work=$(mktemp -d)
trap 'kill $CG 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
env -i PATH="$PATH" CALLGUARD_DATA_DIR="$work/data" CALLGUARD_LISTEN=127.0.0.1:0 \
  CALLGUARD_SIP_LISTEN=127.0.0.1:5060 CALLGUARD_SIP_TRUNKS=127.0.0.1 CALLGUARD_LOG_LEVEL=warn \
  "$BIN" serve >"$work/serve.log" 2>&1 & CG=$!
for _ in $(seq 100); do [ -s "$work/data/run/address" ] && break; sleep 0.1; done
cpu() { awk '{print $14 + $15}' /proc/$CG/stat; }
tck=$(getconf CLK_TCK)
before=$(cpu); t0=$(date +%s.%N)
sipp 127.0.0.1:5060 -sn uac -s callguard -i 127.0.0.1 -p 5070 -m "$CALLS" -r "$RATE" -l "$CALLS" \
  -d "$HOLD_MS" -nostdin -timeout 120 -trace_stat -stf "$work/stat.csv" >"$work/sipp.out" 2>&1 || true
t1=$(date +%s.%N); after=$(cpu)
sleep 1; settled=$(cpu)
ok=$(grep -E "^\s+Successful call" "$work/sipp.out" | awk '{print $NF}' | tail -1)
failed=$(grep -E "^\s+Failed call" "$work/sipp.out" | awk '{print $NF}' | tail -1)
python3 - "$CALLS" "$RATE" "$HOLD_MS" "$ok" "$failed" "$t0" "$t1" "$before" "$settled" "$tck" <<'PY'
import sys
calls, rate, hold, ok, failed, t0, t1, b, a, tck = sys.argv[1:]
ok, failed = int(ok or 0), int(failed or 0)
wall = float(t1) - float(t0)
cpu_s = (int(a) - int(b)) / int(tck)
print(f"calls {calls} offered at {rate}/s, held {hold} ms: {ok} successful, {failed} failed")
print(f"wall {wall:.1f} s; set-up rate {ok / max(wall - int(hold) / 1000, 1e-9):.1f} calls/s (calls / (wall - hold))")
print(f"server CPU {cpu_s:.2f} s = {1000 * cpu_s / max(ok, 1):.2f} ms per call "
      f"(answer, interaction + audit, notice playback, recording start, hang-up)")
PY
