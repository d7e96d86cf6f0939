#!/usr/bin/env bash
# Benchmarks of the renderer image (BENCHMARKS.md, "renderer image"): its size unpacked and as
# gzip-compressed layers (what ECR stores and Fargate pulls), the time from `podman run` to the
# first frame uploaded to S3 (moto) for the example scene, and one 24-frame chunk of the example
# scene rendered by the container against the same frames rendered by bare bpy 4.2 on the host.
#
#   infra/bench-images.sh            # builds release images first (infra/images.sh build)
#
# Needs what the e2e image test needs, plus the AWS CLI, moto_server and hyperfine on PATH.
# SKIP_BUILD=1 uses the images already built; SKIP_SIZE=1 leaves out the size; RUNS=N (default 3);
# IMAGE=localhost/farm-renderer:dev-4.5 measures another series' image; SKIP_CHUNK=1 leaves out
# the chunk against bare bpy 4.2.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
IMAGE="${IMAGE:-localhost/farm-renderer:dev}"
WORK="$(mktemp -d)"
MOTO_PID=""
cleanup() {
  if [[ -n "$MOTO_PID" ]]; then kill "$MOTO_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

[[ "${SKIP_BUILD:-}" == 1 ]] || infra/images.sh build

if [[ "${SKIP_SIZE:-}" != 1 ]]; then
echo "== size"
unpacked="$(podman image inspect --format '{{.Size}}' "$IMAGE")"
podman push --quiet --compression-format gzip "$IMAGE" "oci:$WORK/oci" >/dev/null
compressed="$(python3 - "$WORK/oci" <<'PY'
import json, sys, os
root = sys.argv[1]
index = json.load(open(os.path.join(root, "index.json")))
digest = index["manifests"][0]["digest"].split(":")[1]
manifest = json.load(open(os.path.join(root, "blobs", "sha256", digest)))
print(sum(layer["size"] for layer in manifest["layers"]))
PY
)"
printf 'unpacked %s MB (%s MiB), compressed layers %s MB (%s MiB)\n' \
  "$((unpacked / 1000000))" "$((unpacked / 1048576))" "$((compressed / 1000000))" "$((compressed / 1048576))"
fi

echo "== moto"
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
moto_server -H 127.0.0.1 -p "$PORT" >"$WORK/moto.log" 2>&1 &
MOTO_PID=$!
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1
export AWS_REGION=us-east-1 AWS_ENDPOINT_URL="http://127.0.0.1:$PORT" AWS_PAGER=""
for _ in $(seq 1 100); do
  if aws s3api list-buckets >/dev/null 2>&1; then break; fi
  sleep 0.2
done
aws s3api create-bucket --bucket bench >/dev/null
if [[ ! -f examples/bounce.blend ]]; then
  blender -b --factory-startup --python examples/make_example.py -- "$PWD/examples/bounce.blend" >/dev/null
fi
aws s3api put-object --bucket bench --key bounce.blend --body examples/bounce.blend >/dev/null
ETAG="$(aws s3api head-object --bucket bench --key bounce.blend --query ETag --output text)"
NOFILE="$(ulimit -Hn)"

run_chunk() { # run_chunk FRAMES CHUNK -> the container's log in $WORK/run.log
  podman run --rm --network host --ulimit "nofile=$NOFILE:$NOFILE" --ulimit nproc=4096:4096 \
    --env FARM_WORK_DIR=/scratch --env FARM_LOG_FORMAT=json \
    --env FARM_BUCKET=bench --env FARM_KEY=bounce.blend --env "FARM_FRAMES=$1" \
    --env "FARM_CHUNK=$2" --env "FARM_SOURCE_ETAG=$ETAG" --env AWS_BATCH_JOB_ID=bench \
    --env AWS_ACCESS_KEY_ID --env AWS_SECRET_ACCESS_KEY --env AWS_REGION --env AWS_DEFAULT_REGION \
    --env AWS_ENDPOINT_URL "$IMAGE" 2>"$WORK/run.log" >/dev/null
}

echo "== container start to first uploaded frame (frame 1 of the example scene), 3 runs"
for _ in 1 2 3; do
  aws s3 rm --recursive --quiet s3://bench/bounce.blend/frames/
  started="$(date +%s.%N)"
  run_chunk 1 1
  python3 - "$WORK/run.log" "$started" <<'PY'
import json, sys, datetime
start = float(sys.argv[2])
for line in open(sys.argv[1]):
    try:
        event = json.loads(line)
    except ValueError:
        continue
    if event.get("fields", {}).get("message") == "frame uploaded":
        t = datetime.datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()
        print(f"first frame uploaded {t - start:.2f} s after podman run")
        break
else:
    sys.exit("no frame uploaded: " + open(sys.argv[1]).read()[-2000:])
PY
done

[[ "${SKIP_CHUNK:-}" == 1 ]] && exit 0
echo "== 24 frames in one chunk: container vs bare bpy 4.2 (hyperfine)"
PYTHON="$(scripts/bpy-venv.sh 4.2.23)"
cat >"$WORK/bare.py" <<'PY'
import sys, bpy
blend, out = sys.argv[1:3]
bpy.ops.wm.open_mainfile(filepath=blend, load_ui=False, use_scripts=False)
scene = bpy.context.scene
for f in range(1, 25):
    scene.frame_set(f)
    scene.render.filepath = f"{out}/{f:04d}.png"
    bpy.ops.render.render(write_still=True)
PY
export FARM_SOURCE_ETAG="$ETAG"
hyperfine --warmup 1 --runs "${RUNS:-3}" \
  --prepare "aws s3 rm --recursive --quiet s3://bench/bounce.blend/frames/" \
  -n container "podman run --rm --network host --ulimit nofile=$NOFILE:$NOFILE --ulimit nproc=4096:4096 --env FARM_WORK_DIR=/scratch --env FARM_BUCKET=bench --env FARM_KEY=bounce.blend --env FARM_FRAMES=1-24 --env FARM_CHUNK=24 --env FARM_SOURCE_ETAG --env AWS_BATCH_JOB_ID=bench --env AWS_ACCESS_KEY_ID --env AWS_SECRET_ACCESS_KEY --env AWS_REGION --env AWS_DEFAULT_REGION --env AWS_ENDPOINT_URL $IMAGE" \
  -n "bare bpy 4.2" "$PYTHON $WORK/bare.py examples/bounce.blend $WORK/bare"
