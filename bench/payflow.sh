#!/usr/bin/env bash
# Payment page benchmark (issue #11): builds the release server and the benchmark, then measures
# the hosted payment page's time to first byte under load. Extra arguments go to the benchmark
# (--clients N, --seconds S). About a minute on 2 cores once built.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
cargo build --release -p callguard -p callguard-bench-payflow
exec "$target/release/callguard-bench-payflow" --bin "$target/release/callguard" "$@"
