#!/usr/bin/env bash
# Brings the whole service up on this machine and shows it working:
# installs, builds, migrates, starts the embedded S3 server (unless S3_ENDPOINT is set), the API
# and one worker (CPU), then generates a real video through the API with the official openai
# client while printing where to watch it, downloads it and probes it with ffprobe.
# The service keeps running until Ctrl-C. QUICKSTART_EXIT=1 stops it after the demo.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
set -e

command -v ffmpeg >/dev/null || die "ffmpeg is missing (sudo apt-get install ffmpeg): the worker encodes chunks with it"
check_services
install_deps
say "building (tsc -b)"
npx tsc -b
say "applying database migrations to $DATABASE_URL"
npm run -s db:deploy

mkdir -p .data
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; [ -n "${S3_PID:-}" ] && kill "$S3_PID" 2>/dev/null; wait 2>/dev/null; true; }
trap cleanup EXIT
trap 'exit 130' INT TERM
start_embedded_s3

export PORT=${PORT:-8080}
export PUBLIC_BASE_URL=${PUBLIC_BASE_URL:-http://127.0.0.1:$PORT}
say "starting the API on $PUBLIC_BASE_URL (log: .data/api.log)"
node apps/api/dist/server.js > .data/api.log 2>&1 & pids+=($!)
say "starting a worker (CPU, log: .data/worker.log)"
node apps/worker/dist/main.js > .data/worker.log 2>&1 & pids+=($!)

for _ in $(seq 1 100); do
  curl -sf "$PUBLIC_BASE_URL/readyz" >/dev/null 2>&1 && break
  kill -0 "${pids[0]}" 2>/dev/null || { cat .data/api.log >&2; die "the API exited"; }
  sleep 0.3
done
curl -sf "$PUBLIC_BASE_URL/readyz" >/dev/null || { tail -20 .data/api.log >&2; die "the API did not become ready"; }

say "creating an API key"
KEY=$(node apps/api/dist/cli/keys.js create --name "quickstart-$(date +%s)" | tail -1)
export REHYAT_API_KEY=$KEY REHYAT_BASE_URL=$PUBLIC_BASE_URL/v1
echo "    key: $KEY"
npx tsx scripts/quickstart-demo.ts

if [ "${QUICKSTART_EXIT:-0}" = 1 ]; then exit 0; fi
say "the service is running: API $PUBLIC_BASE_URL (docs $PUBLIC_BASE_URL/docs), key above. Ctrl-C stops it."
wait
