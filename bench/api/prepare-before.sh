#!/usr/bin/env bash
# Unpacks the repository at an earlier commit into <dir>, sharing this checkout's node_modules
# (workspace packages point into <dir>), so `create.ts --before <dir>` can measure that API
# in the same run as the current one.
#   bench/api/prepare-before.sh <commit> <dir>
set -euo pipefail
commit=$1
dir=$2
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
rm -rf "$dir"
mkdir -p "$dir/node_modules/@rehyat"
git -C "$root" archive "$commit" | tar -x -C "$dir"
for entry in "$root"/node_modules/* "$root"/node_modules/.bin; do
  name=$(basename "$entry")
  [ "$name" = "@rehyat" ] || ln -s "$entry" "$dir/node_modules/$name"
done
for scoped in "$root"/node_modules/@*; do
  [ "$(basename "$scoped")" = "@rehyat" ] && continue
  ln -sfn "$scoped" "$dir/node_modules/$(basename "$scoped")"
done
for pkg in "$dir"/packages/* "$dir"/apps/*; do
  [ -f "$pkg/package.json" ] || continue
  name=$(node -e 'process.stdout.write(require(process.argv[1]).name)' "$pkg/package.json")
  ln -s "$pkg" "$dir/node_modules/$name"
done
git -C "$root" log -1 --format="%h" "$commit" > "$dir/.bench-commit"
echo "$dir: $(git -C "$root" log -1 --format="%h %s" "$commit")"
