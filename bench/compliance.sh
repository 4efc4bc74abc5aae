#!/usr/bin/env bash
# Compliance report benchmark (issue #14): builds the benchmark in release, then builds a SQLite
# installation with --entries audit entries (default 10,000,000) and --customers customers
# (default 1,000,000) and times the report twice. Extra arguments go to the benchmark
# (--entries N, --customers N, --keep). The data goes to a fresh directory under the temp dir and
# is deleted at the end unless --keep.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
cargo build --release -p callguard-bench-compliance
exec "$target/release/callguard-bench-compliance" "$@"
