#!/usr/bin/env bash
# Staff sign-in benchmark (issue #2): builds the release server and the benchmark, then runs it
# and prints the report. Extra arguments go to the benchmark (try --help). About a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
cargo build --release -p callguard -p callguard-bench-signin
# The flood holds 2000 connections open on each side: raise the open-file limit if allowed.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec "$target/release/callguard-bench-signin" --bin "$target/release/callguard" "$@"
