#!/usr/bin/env bash
# Audit-log benchmark (issue #3): builds the benchmark in release, then runs it and prints the
# report. Extra arguments go to the benchmark (try --help). About 5 minutes on 2 cores; it
# needs PostgreSQL at 127.0.0.1:5432 (user postgres, trust) unless given --no-pg. Every
# database it makes (SQLite files under the temp dir, PostgreSQL databases) is deleted at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
cargo build --release -p callguard-bench-audit
exec "$target/release/callguard-bench-audit" "$@"
