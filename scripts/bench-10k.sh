#!/usr/bin/env bash
# A job of 10,000 array children against moto (issue 27, item 4; BENCHMARKS.md "10,000
# children"): builds `farm` and the `zipper` (test profile, as the other moto benches), then runs
# farm-cli/bench/ten_thousand.rs, which starts its own moto_server, submits the job through the
# trigger's handler, puts 10,000 frames and task records, and times `farm status --json` and
# the zipper (with and without the contact sheet), counting their calls. About 5 to 10 minutes
# on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh >/dev/null
cargo build --profile test -p zipper
cargo bench --profile test -p farm-cli --bench ten_thousand
