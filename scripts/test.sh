#!/usr/bin/env bash
# Runs every test of the project on this machine: the TypeScript packages and apps against real
# PostgreSQL, Redis, an S3 server and ffmpeg; the kernels' CPU op and addon; the Python model.
# Works on a fresh clone: installs what is missing first.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
set -e

ensure_system_packages() {
  local missing=()
  "$PY" -c 'import torch, onnx, pytest' 2>/dev/null || missing+=(python3-torch python3-onnx python3-pytest)
  command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || missing+=(ffmpeg)
  [ ${#missing[@]} -eq 0 ] && return
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing Debian packages: ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    die "missing Debian packages: ${missing[*]} (sudo apt-get install ${missing[*]})"
  fi
}

check_services
ensure_system_packages
install_deps
say "building the kernels (CPU; CUDA too where nvcc is found)"
npm run -s fetch-headers -w @rehyat/kernels
npm run -s kernels:build
start_embedded_s3
trap '[ -n "${S3_PID:-}" ] && kill $S3_PID 2>/dev/null; true' EXIT
say "type-checking"
npx tsc -b
say "type-checking tests, benches and scripts (tsconfig.test.json)"
npm run -s typecheck:tests || die "type errors in test, bench or script code (above); tsx runs them without checking types, so fix the types (npm run typecheck:tests) before trusting the tests"
say "applying migrations to $DATABASE_URL and checking them against the schema"
npm run -s db:deploy
npm run -s db:check

set +e
failed=()
for ws in packages/* apps/*; do
  [ -f "$ws/package.json" ] || continue
  node -e 'process.exit(require("./'"$ws"'/package.json").scripts?.test ? 0 : 1)' || continue
  say "tests: $ws"
  (cd "$ws" && npm test) || failed+=("$ws")
done
say "tests: training (Python)"
"$PY" -m pytest training/tests -q -p no:cacheprovider || failed+=(training)

if [ ${#failed[@]} -gt 0 ]; then
  printf '\033[31mFAILED:\033[0m %s\n' "${failed[*]}"
  exit 1
fi
say "all test suites passed"
