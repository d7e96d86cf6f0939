#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this): installs what the tests need, then
# formatting, lints, every crate's tests (against moto_server and Debian's Blender), the
# infrastructure checks, the Lambda packaging check and the set-up on a stock Debian 12.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
# moto_server, aws, cfn-lint, checkov, hadolint, cargo-lambda, zig and ruff from setup's environment.
# shellcheck source=scripts/env.sh
source scripts/env.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== ruff (the Blender add-on's Python; settings in blender-addon/ruff.toml)"
ruff check blender-addon
ruff format --check blender-addon
echo "== cargo test"
cargo test --workspace --locked
echo "== farm for this machine only (what scripts/example.sh installs: no AWS SDK)"
cargo clippy -p farm-cli --no-default-features --locked -- -D warnings
cargo test -p farm-cli --no-default-features --lib --locked
echo "== fuzz the .blend reader (60 s)"
scripts/fuzz.sh 60
echo "== infra checks"
infra/check.sh
echo "== cargo lambda"
trigger-lambda/tests/cargo_lambda.sh
echo "== scripts/setup.sh on a stock Debian 12 (debootstrap root)"
scripts/setup-chroot-test.sh
echo "== all checks passed"
