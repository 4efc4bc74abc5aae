#!/usr/bin/env bash
# Customer vault benchmark (issue #4): builds the release server and the benchmark, then runs it
# and prints the report. Extra arguments go to the benchmark (try --help). About 3 minutes on 2
# cores; the PostgreSQL phase needs PostgreSQL at 127.0.0.1:5432 (user postgres, trust) unless
# given --no-pg, and drops the database it makes. Temporary data directories are deleted at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
cargo build --release -p callguard -p callguard-bench-vault
exec "$target/release/callguard-bench-vault" --bin "$target/release/callguard" "$@"
