#!/usr/bin/env bash
# Do-Not-Call registry benchmark (issue #5): builds the release binary and the benchmark, then
# runs it and prints the report. Extra arguments go to the benchmark (try --help). At the default
# national scale (253 million numbers) it takes about 15 minutes on 2 cores and needs about 25 GB
# of free disk (the registry file, a SQLite copy and a PostgreSQL copy) and 6 GB of RAM; it needs
# PostgreSQL at 127.0.0.1:5432 (user postgres, trust) unless given --no-pg. Every file and
# database it makes is deleted at the end (--keep keeps them).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
cargo build --release -p callguard -p callguard-bench-dnc
exec "$target/release/callguard-bench-dnc" --bin "$target/release/callguard" "$@"
