#!/usr/bin/env bash
# Payment gateway benchmark (issue #11): builds the benchmark in release mode and runs it. Extra
# arguments go to the benchmark (try --help). About a minute with the defaults; nothing leaves
# the machine (the gateway is the local Stripe test peer on 127.0.0.1).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
cargo build --release -p callguard-bench-payments
exec "$target/release/callguard-bench-payments" "$@"
