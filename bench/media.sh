#!/usr/bin/env bash
# Media plane benchmark (issue #12): builds the benchmark in release mode and runs it. Extra
# arguments go to the benchmark (try --help). About 30 seconds of measuring on one core.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
cargo build --release -p callguard-bench-media
exec "$target/release/callguard-bench-media" "$@"
