#!/usr/bin/env bash
# Bridged, recorded calls against rtpengine (issue #12): N concurrent callers (sipp) go through
# Callguard's notice, IVR (key 1, then # to skip self-verification) and queue to N registered,
# ready agents (a sipp UAS echoing RTP), bridged and recorded; then, in the same run, the same
# N callers with the same RTP go through Debian's rtpengine (userspace only, --table=-1) to the
# same echoing UAS. For each: the server's CPU (utime+stime from /proc/PID/stat) over the
# steady bridged phase, per call-second and per relayed RTP packet; packet loss and reordering
# per stream as the receivers see it (tcpdump on lo, bench/sip/rtpstats.py). Needs root: it
# re-runs itself inside `unshare -n` (only lo).
#   bench/sip/bridged.sh [CALLS] [RATE] [TALK_S]       defaults: 300 calls, 100 calls/s, 30 s
#   BIN=path/to/callguard to skip the release build; ONLY=callguard or ONLY=rtpengine for one side;
#   KEEP=1 keeps the work directory (captures, logs); PERF=1 also profiles each server over the
#   window with perf (NAME.perf.txt there).
set -euo pipefail
cd "$(dirname "$0")/../.."
CALLS=${1:-300} RATE=${2:-100} TALK_S=${3:-30}
if [ -z "${CALLGUARD_BENCH_INSIDE:-}" ]; then
  target="${CARGO_TARGET_DIR:-target}"
  [ -n "${BIN:-}" ] || { cargo build --release -p callguard -j 2 >&2; BIN="$PWD/$target/release/callguard"; }
  exec env CALLGUARD_BENCH_INSIDE=1 BIN="$BIN" ONLY="${ONLY:-}" KEEP="${KEEP:-}" PERF="${PERF:-}" \
    unshare -n -- "$0" "$CALLS" "$RATE" "$TALK_S"
fi
ip link set lo up
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
here="$PWD/bench/sip"
work=$(mktemp -d /tmp/cg-bridged.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
cd "$work"
cp "$here"/*.xml .
pcap_ms=$(python3 "$here/mkpcap.py" caller.pcap 5000 k:1 1000 'k:#' $((TALK_S * 1000)))
hold_ms=$((pcap_ms + 1000))
tck=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
busy() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
# The steady window, from the first call's start: every call bridged (the last starts at
# CALLS/RATE s and reaches its agent about 7.5 s later) until the first call's talk ends.
win_from=$(python3 -c "print($CALLS / $RATE + 9)")
win_to=$(python3 -c "print(($pcap_ms - 1000) / 1000)")
python3 -c "assert $win_to - $win_from >= 5, 'TALK_S too short for CALLS/RATE'"

echo "bridged-call benchmark (issue #12): $CALLS calls offered at $RATE/s, ${TALK_S} s of talk each (pcap $pcap_ms ms, hold $hold_ms ms)"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load average $(cut -d' ' -f1-3 /proc/loadavg) at start"
echo "steady window: ${win_from} s to ${win_to} s after the first call starts"

# The agents' softphones: one sipp UAS answering every INVITE and echoing RTP on port 8000.
sipp -sf agent_uas.xml -i 127.0.0.1 -p 5080 -mi 127.0.0.1 -mp 8000 -rtp_echo -nostdin \
  -trace_logs -log_file agents.log >agents.out 2>&1 & AG=$!; pids+=($AG)

# run_calls NAME TARGET SERVER_PID: callers, capture, CPU over the window; writes NAME.json.
run_calls() {
  local name=$1 target=$2 spid=$3
  tcpdump -i lo -n -s 64 -B 131072 -w "$name.pcap" 'udp and (dst port 7000 or dst port 8000)' \
    >/dev/null 2>"$name.tcpdump" & local td=$!
  for _ in $(seq 50); do grep -q listening "$name.tcpdump" 2>/dev/null && break; sleep 0.1; done
  local t0; t0=$(date +%s.%N)
  sipp "$target" -sf caller.xml -s callguard -i 127.0.0.1 -p 5070 -mi 127.0.0.1 -mp 7000 \
    -m "$CALLS" -r "$RATE" -l "$CALLS" -d "$hold_ms" -nostdin -timeout $((hold_ms / 1000 + 120)) \
    -trace_logs -log_file "$name.answers" >"$name.sipp" 2>&1 & local uac=$!
  sleep "$(python3 -c "print(max(0, $t0 + $win_from - $(date +%s.%N)))")"
  local a0 b0 c0 d0 m0 w0; a0=$(cpu "$spid"); b0=$(cpu "$uac"); c0=$(cpu "$AG"); d0=$(cpu "$td")
  m0=$(busy); w0=$(date +%s.%N)
  local pf=""
  if [ -n "${PERF:-}" ]; then
    perf record -F 499 -p "$spid" -o "$name.perf.data" -- \
      sleep "$(python3 -c "print(max(1, $win_to - $win_from - 1))")" >/dev/null 2>&1 & pf=$!
  fi
  local oncall=""
  [ "$name" = callguard ] && oncall=$(python3 "$here/agents.py" metric data 'callguard_agents{state="on_call"}')
  sleep "$(python3 -c "print(max(0, $t0 + $win_to - $(date +%s.%N)))")"
  local a1 b1 c1 d1 m1 w1; a1=$(cpu "$spid"); b1=$(cpu "$uac"); c1=$(cpu "$AG"); d1=$(cpu "$td")
  m1=$(busy); w1=$(date +%s.%N)
  local load; load=$(cut -d' ' -f1-3 /proc/loadavg)
  if [ -n "$pf" ]; then
    wait "$pf" || true
    perf report -i "$name.perf.data" --no-children --sort dso,symbol --stdio 2>/dev/null \
      | grep -v '^$' | grep -v '^#' | grep '%' | head -60 >"$name.perf.txt" || true
  fi
  wait "$uac" || true
  sleep 1; kill -INT "$td"; wait "$td" 2>/dev/null || true
  python3 "$here/rtpstats.py" "$name.pcap" "$w0" "$w1" 7000 8000 >"$name.rtp"
  python3 - "$name" "$CALLS" "$w0" "$w1" "$tck" "$a0" "$a1" "$b0" "$b1" "$c0" "$c1" "$d0" "$d1" \
    "$m0" "$m1" "$oncall" "$load" <<'PY'
import json, re, sys
name, calls, w0, w1, tck = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
v = [int(x) / tck for x in sys.argv[6:16]]
server, uac, uas, tcpdump, machine = v[1] - v[0], v[3] - v[2], v[5] - v[4], v[7] - v[6], v[9] - v[8]
rtp = json.load(open(f"{name}.rtp"))
out = open(f"{name}.sipp").read()
def count(label):
    m = re.findall(label + r"\s*\|\s*\d+\s*\|\s*(\d+)", out)
    return int(m[-1]) if m else None
drops = re.findall(r"(\d+) packets? dropped by kernel", open(f"{name}.tcpdump").read())
r = {"name": name, "window_s": w1 - w0, "server_cpu_s": server, "caller_sipp_cpu_s": uac,
     "agent_sipp_cpu_s": uas, "tcpdump_cpu_s": tcpdump, "machine_busy_s": machine,
     "calls_ok": count("Successful call"), "calls_failed": count("Failed call"),
     "packets_in_window": rtp["in_window"], "rtp": rtp, "on_call": sys.argv[16] or None,
     "tcpdump_dropped": int(drops[-1]) if drops else None, "load": sys.argv[17]}
r["cpu_us_per_call_second"] = 1e6 * server / (calls * r["window_s"])
r["cpu_us_per_packet"] = 1e6 * server / max(1, rtp["in_window"])
json.dump(r, open(f"{name}.json", "w"))
PY
}

# ---- Callguard --------------------------------------------------------------------------
if [ "${ONLY:-}" != rtpengine ]; then
  env -i PATH="$PATH" CALLGUARD_DATA_DIR="$work/data" CALLGUARD_LISTEN=127.0.0.1:0 \
    CALLGUARD_SIP_LISTEN=127.0.0.1:5060 CALLGUARD_SIP_TRUNKS=127.0.0.1 \
    CALLGUARD_SIP_REALM=callguard.bench CALLGUARD_SIP_DIGEST_ALGORITHMS=MD5 \
    CALLGUARD_SIP_RTP_PORTS=20000-29999 CALLGUARD_QUEUES_RING_SECONDS=20 \
    CALLGUARD_QUEUES_WRAP_UP_SECONDS=1 CALLGUARD_LOG_LEVEL=warn \
    "$BIN" serve >serve.log 2>&1 & CG=$!; pids+=($CG)
  for _ in $(seq 300); do [ -s data/run/address ] && break; sleep 0.1; done
  python3 "$here/agents.py" setup "$work/data" "$BIN" "$CALLS" agents.csv
  python3 "$here/agents.py" register 127.0.0.1:5060 127.0.0.1:5080 agents.csv
  regs=$(python3 "$here/agents.py" metric data callguard_sip_registrations)
  echo "agents registered: $regs of $CALLS"
  [ "$regs" = "$CALLS" ] || { echo "not every agent registered" >&2; exit 1; }
  run_calls callguard 127.0.0.1:5060 "$CG"
  python3 - <<'PY' > callguard.setup
def rate(path, word):
    ticks = [int(l.split()[1]) for l in open(path) if l.startswith(word)]
    span = (max(ticks) - min(ticks)) / 1000 if len(ticks) > 1 else 0
    return len(ticks), (len(ticks) - 1) / span if span else 0, span
n, r, span = rate("callguard.answers", "answered")
print(f"{n} calls answered (200 OK at the callers): {r:.1f} calls/s over {span:.2f} s")
n, r, span = rate("agents.log", "invite")
print(f"callguard {n} calls reached an agent (INVITE at the agents, after notice + IVR): {r:.1f} calls/s over {span:.2f} s")
PY
  kill "$CG"; wait "$CG" 2>/dev/null || true
  # Every call's recording: decrypted and checked by the binary (both legs, complete).
  python3 -c "import sqlite3; [print(r[0]) for r in sqlite3.connect('data/callguard.db').execute('select interaction_id from recordings')]" \
    | xargs -r -P 2 -I{} env -i PATH="$PATH" CALLGUARD_DATA_DIR="$work/data" "$BIN" recording check {} >checks.out 2>&1 || true
  python3 - <<'PY' > callguard.recordings
import re
lines = [l for l in open("checks.out") if l.startswith("recording ")]
both = [l for l in lines if l.rstrip().endswith("complete") and int(re.search(r"agent audible for (\d+) ms", l).group(1)) > 0]
agent_ms = sorted(int(re.search(r"agent audible for (\d+) ms", l).group(1)) for l in lines)
print(f"recordings: {len(lines)} checked, {len(both)} complete with both legs audible"
      + (f" (agent audible {agent_ms[0]}..{agent_ms[-1]} ms)" if agent_ms else ""))
PY
fi

# ---- rtpengine --------------------------------------------------------------------------
if [ "${ONLY:-}" != callguard ]; then
  rtpengine --table=-1 --interface=127.0.0.1 --listen-ng=127.0.0.1:2223 --foreground --log-stderr \
    --log-level=4 --port-min=30000 --port-max=39999 --num-threads="$(nproc)" >rtpengine.log 2>&1 & RE=$!
  pids+=($RE)
  python3 "$here/ngpeer.py" 5064 127.0.0.1:2223 127.0.0.1:8000 >ngpeer.out 2>&1 & NP=$!; pids+=($NP)
  sleep 1
  run_calls rtpengine 127.0.0.1:5064 "$RE"
  kill "$NP"; wait "$NP" 2>/dev/null || true
fi

# ---- report -----------------------------------------------------------------------------
python3 - "$CALLS" <<'PY'
import json, os, sys
calls = int(sys.argv[1])
res = {n: json.load(open(f"{n}.json")) for n in ("callguard", "rtpengine") if os.path.exists(f"{n}.json")}
for n, r in res.items():
    rtp = r["rtp"]
    print(f"\n{n}: calls {r['calls_ok']} successful, {r['calls_failed']} failed (sipp)" +
          (f"; agents on call in the window: {r['on_call']}" if r["on_call"] else ""))
    print(f"  window {r['window_s']:.1f} s: server CPU {r['server_cpu_s']:.2f} s "
          f"({100 * r['server_cpu_s'] / r['window_s']:.0f}% of a core); "
          f"{r['packets_in_window']} RTP packets delivered to the endpoints "
          f"({r['packets_in_window'] / r['window_s'] / calls:.1f} per call per second)")
    print(f"  {r['cpu_us_per_call_second']:.1f} us CPU per call-second -> "
          f"{1e6 / r['cpu_us_per_call_second']:.0f} concurrent calls per core; "
          f"{r['cpu_us_per_packet']:.2f} us per relayed packet")
    print(f"  whole calls: {rtp['streams']} streams, {rtp['packets']} packets: lost {rtp['lost']}, "
          f"reordered {rtp['reordered']}, duplicated {rtp['duplicated']}; "
          f"tcpdump dropped {r['tcpdump_dropped']}")
    for w in rtp["worst"]:
        print(f"    {w}")
    print(f"  load generators in the window: caller sipp {r['caller_sipp_cpu_s']:.2f} s, agents' sipp "
          f"{r['agent_sipp_cpu_s']:.2f} s, tcpdump {r['tcpdump_cpu_s']:.2f} s; whole machine busy "
          f"{r['machine_busy_s']:.2f} s of {r['window_s'] * os.cpu_count():.1f}; load average {r['load']}")
if os.path.exists("callguard.setup"):
    print("\ncallguard set-up: " + open("callguard.setup").read().strip())
    print("callguard " + open("callguard.recordings").read().strip())
if len(res) == 2:
    ratio = res["callguard"]["cpu_us_per_call_second"] / res["rtpengine"]["cpu_us_per_call_second"]
    print(f"\nCPU per bridged, recorded call (Callguard) / per relayed call (rtpengine): {ratio:.2f} (goal <= 1.0)")
PY
