# Shared by scripts/test.sh and scripts/quickstart.sh: defaults, service checks, embedded S3.
# Sourced, not run.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

export DATABASE_URL=${DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/rehyat}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
PY=${PYTHON:-/usr/bin/python3}

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf '\033[31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# host and port of a URL like proto://user@host:port/db
url_hostport() { node -e 'const u=new URL(process.argv[1]);process.stdout.write(`${u.hostname} ${u.port||process.argv[2]}`)' "$1" "$2"; }

require_tcp() {  # name url default-port hint
  local hp; hp=$(url_hostport "$2" "$3")
  set -- "$1" "$hp" "$4"
  local host=${2% *} port=${2#* }
  if ! node -e 'const s=require("net").connect(+process.argv[2],process.argv[1]);s.on("connect",()=>process.exit(0));s.on("error",()=>process.exit(1));setTimeout(()=>process.exit(1),3000)' "$host" "$port"; then
    die "$1 is not reachable at $host:$port. $3"
  fi
}

check_services() {
  require_tcp PostgreSQL "$DATABASE_URL" 5432 "Start it (e.g. 'pg_ctlcluster \$(ls /etc/postgresql) main start') or set DATABASE_URL."
  require_tcp Redis "$REDIS_URL" 6379 "Start it (e.g. 'redis-server --daemonize yes') or set REDIS_URL."
}

install_deps() {
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    say "installing npm dependencies (npm ci)"
    npm ci --no-audit --no-fund
  fi
}

# Starts the embedded S3 server unless S3_ENDPOINT points at one; exports S3_* for children.
start_embedded_s3() {
  if [ -n "${S3_ENDPOINT:-}" ]; then return; fi
  local port=${EMBEDDED_S3_PORT:-9000}
  export S3_ENDPOINT=http://127.0.0.1:$port
  export S3_BUCKET=${S3_BUCKET:-rehyat}
  export S3_ACCESS_KEY_ID=${S3_ACCESS_KEY_ID:-S3RVER} S3_SECRET_ACCESS_KEY=${S3_SECRET_ACCESS_KEY:-S3RVER}
  if node -e 'const s=require("net").connect(+process.argv[1],"127.0.0.1");s.on("connect",()=>process.exit(0));s.on("error",()=>process.exit(1))' "$port"; then
    say "an S3 server already listens on $S3_ENDPOINT; using it"
    return
  fi
  say "starting the embedded S3 server on $S3_ENDPOINT (data in .data/s3)"
  mkdir -p .data
  node --conditions=development --import tsx packages/storage/bin/s3-server.ts --port "$port" --directory .data/s3 --bucket "$S3_BUCKET" > .data/s3-server.log 2>&1 &
  S3_PID=$!
  for _ in $(seq 1 50); do
    node -e 'const s=require("net").connect(+process.argv[1],"127.0.0.1");s.on("connect",()=>process.exit(0));s.on("error",()=>process.exit(1))' "$port" && return
    sleep 0.2
  done
  cat .data/s3-server.log >&2; die "the embedded S3 server did not start"
}
