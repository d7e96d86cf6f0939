#!/usr/bin/env bash
# Speed and memory of the zipper against moto_server (issue 8, BENCHMARKS.md `## zipper`).
#
# 1. Speed: 400 frames of 1 MiB, the zipper binary (release) against the obvious script
#    (`aws s3 sync` down, `zip -0`, `aws s3 cp` up), 3 runs each with hyperfine, same moto.
# 2. Memory: the zipper's peak RSS (`/usr/bin/time -v`) for 40 x 1 MiB, 1024 x 1 MiB and one
#    frame of 1 GiB (streamed into its entry, never held).
# 3. The contact sheet (issue 14): 1,500 real 1920x1080 PNG frames of about 1 MiB, the zipper
#    with `FARM_PREVIEW=true` against `FARM_PREVIEW=false` (hyperfine, RUNS each), and the peak
#    RSS of each.
#
# Usage: zipper/bench/bench.sh [RUNS]    (needs moto_server, aws, zip, unzip, hyperfine, time)
# 4. (PARTS=exr) 100 uncompressed 16.6 MB EXR frames, streamed: time and peak RSS, on and off.
# PARTS="speed memory preview" (the default; add exr) chooses the parts to run.
# Results go to stdout and to $OUT (default target/zipper-bench/results.md).
set -euo pipefail

RUNS=${1:-3}
PARTS=${PARTS:-speed memory preview}
part() { [[ " $PARTS " == *" $1 "* ]]; }
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${WORK:-$(mktemp -d /tmp/zipper-bench.XXXXXX)}
OUT=${OUT:-$ROOT/target/zipper-bench/results.md}
BUCKET=zipper-bench
mkdir -p "$(dirname "$OUT")"

for tool in moto_server aws zip unzip hyperfine /usr/bin/time python3; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is missing" >&2; exit 2; }
done

echo "== building the zipper (release)" >&2
cargo build --release -p zipper --manifest-path "$ROOT/Cargo.toml" >&2
ZIPPER=${CARGO_TARGET_DIR:-$ROOT/target}/release/zipper

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
moto_server -H 127.0.0.1 -p "$PORT" >"$WORK/moto.log" 2>&1 &
MOTO_PID=$!
cleanup() {
    kill "$MOTO_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$PORT/moto-api/" >/dev/null 2>&1 && break
    sleep 0.1
done

export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1
export AWS_REGION=us-east-1 AWS_ENDPOINT_URL=http://127.0.0.1:$PORT
export FARM_BUCKET=$BUCKET FARM_LOG_FORMAT=text RUST_LOG=warn
aws s3 mb "s3://$BUCKET" >/dev/null

# upload_frames KEY COUNT: COUNT random 1 MiB frames under KEY/frames/.
upload_frames() {
    local key=$1 count=$2 dir=$WORK/src-$1
    mkdir -p "$dir"
    python3 - "$dir" "$count" <<'PY'
import os, sys
folder, count = sys.argv[1], int(sys.argv[2])
for n in range(1, count + 1):
    with open(os.path.join(folder, f"{n:04d}.png"), "wb") as f:
        f.write(os.urandom(1024 * 1024))
PY
    aws s3 sync "$dir" "s3://$BUCKET/$key/frames/" --quiet
    rm -rf "$dir"
}

# upload_pngs KEY COUNT: COUNT copies of one real 1920x1080 RGB PNG of about 1 MiB (noise in
# the top 180 rows, a gradient below) under KEY/frames/, so the contact sheet decodes them all.
upload_pngs() {
    local key=$1 count=$2 dir=$WORK/src-$1
    mkdir -p "$dir"
    python3 - "$dir" "$count" <<'PY'
import os, shutil, struct, sys, zlib
folder, count = sys.argv[1], int(sys.argv[2])
width, height = 1920, 1080
rows = []
for y in range(height):
    if y < 180:
        rows.append(b"\0" + os.urandom(width * 3))
    else:
        rows.append(b"\0" + bytes([y % 256, 128, 255 - y % 256]) * width)
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
       + chunk(b"IDAT", zlib.compress(b"".join(rows), 6)) + chunk(b"IEND", b""))
first = os.path.join(folder, "0001.png")
with open(first, "wb") as f:
    f.write(png)
for n in range(2, count + 1):
    shutil.copyfile(first, os.path.join(folder, f"{n:04d}.png"))
PY
    aws s3 sync "$dir" "s3://$BUCKET/$key/frames/" --quiet
    rm -rf "$dir"
}

# upload_exrs KEY COUNT: COUNT copies of one uncompressed 1920x1080 half-float RGBA OpenEXR
# (16.6 MB, larger than the 4 MiB prefetch window: streamed into its entry and into the sheet).
upload_exrs() {
    local key=$1 count=$2 dir=$WORK/src-$1
    mkdir -p "$dir"
    python3 - "$dir" "$count" <<'PY'
import os, shutil, struct, sys
folder, count = sys.argv[1], int(sys.argv[2])
width, height = 1920, 1080
def attr(name, kind, value):
    return name + b"\0" + kind + b"\0" + struct.pack("<i", len(value)) + value
channels = b"".join(c + b"\0" + struct.pack("<iBBBBii", 1, 0, 0, 0, 0, 1, 1) for c in (b"A", b"B", b"G", b"R")) + b"\0"
box = struct.pack("<iiii", 0, 0, width - 1, height - 1)
header = (b"\x76\x2f\x31\x01" + struct.pack("<i", 2)
          + attr(b"channels", b"chlist", channels) + attr(b"compression", b"compression", b"\0")
          + attr(b"dataWindow", b"box2i", box) + attr(b"displayWindow", b"box2i", box)
          + attr(b"lineOrder", b"lineOrder", b"\0") + attr(b"pixelAspectRatio", b"float", struct.pack("<f", 1))
          + attr(b"screenWindowCenter", b"v2f", struct.pack("<ff", 0, 0))
          + attr(b"screenWindowWidth", b"float", struct.pack("<f", 1)) + b"\0")
line = b"".join(struct.pack("<e", v) * width for v in (1.0, 0.2, 0.5, 0.8))
chunk = len(line) + 8
start = len(header) + 8 * height
offsets = b"".join(struct.pack("<Q", start + y * chunk) for y in range(height))
first = os.path.join(folder, "0001.exr")
with open(first, "wb") as f:
    f.write(header + offsets)
    for y in range(height):
        f.write(struct.pack("<ii", y, len(line)) + line)
for n in range(2, count + 1):
    shutil.copyfile(first, os.path.join(folder, f"{n:04d}.exr"))
PY
    aws s3 sync "$dir" "s3://$BUCKET/$key/frames/" --quiet
    rm -rf "$dir"
}

echo "== uploading frames" >&2
if part speed; then upload_frames speed.blend 400; fi
if part memory; then
    upload_frames small.blend 40
    upload_frames big.blend 1024
    # One 1 GiB frame (a multilayer EXR's size), sparse on disk, uploaded in parts.
    truncate -s 1G "$WORK/huge.exr"
    aws s3 cp "$WORK/huge.exr" "s3://$BUCKET/huge.blend/frames/0001.exr" --quiet
    rm -f "$WORK/huge.exr"
fi
if part preview; then upload_pngs sheet.blend 1500; fi
if part exr; then upload_exrs exr.blend 100; fi

SCRIPT="aws s3 sync s3://$BUCKET/speed.blend/frames/ $WORK/dl --quiet \
&& (cd $WORK/dl && zip -0 -q ../script.zip *.png) \
&& aws s3 cp $WORK/script.zip s3://$BUCKET/speed.blend/script.zip --quiet"

# peak_rss KEY FRAMES [VAR=VALUE...]: the zipper's maximum resident set size in KiB.
peak_rss() {
    local key=$1 frames=$2
    shift 2
    env FARM_KEY="$key" FARM_FRAMES="$frames" "$@" /usr/bin/time -v "$ZIPPER" 2>"$WORK/time.txt" >/dev/null
    awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time.txt"
}

: >"$WORK/results.md"
if part speed; then
echo "== speed: 400 x 1 MiB, $RUNS runs each" >&2
hyperfine --runs "$RUNS" --warmup 0 --style basic \
    --prepare "rm -rf $WORK/dl $WORK/script.zip" \
    --export-markdown "$WORK/speed.md" \
    -n zipper "FARM_KEY=speed.blend FARM_FRAMES=1-400 $ZIPPER" \
    -n script "$SCRIPT" >&2

# The archive the zipper made is a valid zip with every frame.
aws s3 cp "s3://$BUCKET/speed.blend/frames.zip" "$WORK/check.zip" --quiet
unzip -tq "$WORK/check.zip" >&2
test "$(unzip -Z1 "$WORK/check.zip" | wc -l)" -eq 400
rm -f "$WORK/check.zip"
{
    echo "### speed: 400 frames x 1 MiB (hyperfine, $RUNS runs)"
    echo
    cat "$WORK/speed.md"
    echo
} >>"$WORK/results.md"
fi

if part memory; then
echo "== memory" >&2
SMALL_KIB=$(peak_rss small.blend 1-40)
BIG_KIB=$(peak_rss big.blend 1-1024)
HUGE_KIB=$(peak_rss huge.blend 1)
aws s3 cp "s3://$BUCKET/huge.blend/frames.zip" "$WORK/huge.zip" --quiet
unzip -tq "$WORK/huge.zip" >&2
rm -f "$WORK/huge.zip"

{
    echo "### peak RSS of the zipper (/usr/bin/time -v)"
    echo
    echo "| frames | peak RSS |"
    echo "|:---|---:|"
    echo "| 40 x 1 MiB (40 MiB) | $((SMALL_KIB / 1024)) MiB ($SMALL_KIB KiB) |"
    echo "| 1024 x 1 MiB (1 GiB) | $((BIG_KIB / 1024)) MiB ($BIG_KIB KiB) |"
    echo "| 1 x 1 GiB | $((HUGE_KIB / 1024)) MiB ($HUGE_KIB KiB) |"
    echo
} >>"$WORK/results.md"
fi

if part preview; then
echo "== contact sheet: 1,500 x 1 MiB PNG (1920x1080), on against off, $RUNS runs each" >&2
hyperfine --runs "$RUNS" --warmup 0 --style basic \
    --export-markdown "$WORK/preview.md" \
    -n "preview on" "FARM_KEY=sheet.blend FARM_FRAMES=1-1500 FARM_PREVIEW=true $ZIPPER" \
    -n "preview off" "FARM_KEY=sheet.blend FARM_FRAMES=1-1500 FARM_PREVIEW=false $ZIPPER" >&2
ON_KIB=$(peak_rss sheet.blend 1-1500 FARM_PREVIEW=true)
aws s3 cp "s3://$BUCKET/sheet.blend/preview.jpg" "$WORK/preview.jpg" --quiet
SHEET_BYTES=$(stat -c %s "$WORK/preview.jpg")
OFF_KIB=$(peak_rss sheet.blend 1-1500 FARM_PREVIEW=false)
{
    echo "### contact sheet: 1,500 frames x 1 MiB PNG 1920x1080 (hyperfine, $RUNS runs)"
    echo
    cat "$WORK/preview.md"
    echo
    echo "| 1,500 x 1 MiB PNG | peak RSS |"
    echo "|:---|---:|"
    echo "| preview on (sheet $SHEET_BYTES bytes) | $((ON_KIB / 1024)) MiB ($ON_KIB KiB) |"
    echo "| preview off | $((OFF_KIB / 1024)) MiB ($OFF_KIB KiB) |"
} >>"$WORK/results.md"
fi

if part exr; then
echo "== contact sheet: 100 x 16.6 MB EXR (1920x1080 half RGBA), on against off, one run each" >&2
for setting in true false; do
    start=$(date +%s.%N)
    KIB=$(peak_rss exr.blend 1-100 FARM_PREVIEW=$setting)
    end=$(date +%s.%N)
    echo "| preview $setting | $(python3 -c "print(f'{$end - $start:.1f} s')") | $((KIB / 1024)) MiB ($KIB KiB) |" >>"$WORK/exr.md"
done
# (Downloading the 1.6 GB archive from moto takes minutes; the streamed entries are checked by
# zipper/tests/moto.rs.)
{
    echo "### contact sheet: 100 frames x 16.6 MB EXR, streamed (one run each)"
    echo
    echo "| 100 x 16.6 MB EXR | time | peak RSS |"
    echo "|:---|---:|---:|"
    cat "$WORK/exr.md"
} >>"$WORK/results.md"
fi

tee "$OUT" <"$WORK/results.md"
