#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this): installs what the tests need, then
# formatting, lints, every crate's tests (against moto_server and Debian's Blender), the
# infrastructure checks and the Lambda packaging check.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
echo "== fuzz the .blend reader (60 s)"
scripts/fuzz.sh 60
echo "== infra checks"
infra/check.sh
echo "== cargo lambda"
trigger-lambda/tests/cargo_lambda.sh
echo "== all checks passed"
