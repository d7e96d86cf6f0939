#!/usr/bin/env bash
# The trigger-lambda benchmark (numbers in BENCHMARKS.md, section trigger-lambda):
# 1. the Lambda package: `cargo lambda build --release --output-format zip`, the size of
#    bootstrap.zip and the newest glibc symbol version the binary needs;
# 2. handler time against moto_server for a 10,000-frame request (bench/handler.rs).
set -euo pipefail
cd "$(dirname "$0")/../.."

cargo lambda build --release --output-format zip -p trigger-lambda
zip=target/lambda/trigger-lambda/bootstrap.zip
bytes=$(stat -c %s "$zip")
echo "bootstrap.zip: $bytes bytes ($(awk "BEGIN { printf \"%.2f\", $bytes / 1048576 }") MiB)"
unpacked=$(mktemp -d)
trap 'rm -rf "$unpacked"' EXIT
unzip -q "$zip" -d "$unpacked"
echo "bootstrap: $(stat -c %s "$unpacked/bootstrap") bytes, $(file -b "$unpacked/bootstrap" | cut -d, -f1-2)"
echo "newest glibc symbol version needed: $(objdump -T "$unpacked/bootstrap" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -n1) (Amazon Linux 2023 has glibc 2.34)"

cargo bench -p trigger-lambda --bench handler
