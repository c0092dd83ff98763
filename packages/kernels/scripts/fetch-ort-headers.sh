#!/usr/bin/env bash
# Fetch the ONNX Runtime C/C++ API headers from Debian's libonnxruntime-dev (trixie, ORT 1.21)
# into packages/kernels/.ort-headers/include/onnxruntime (git-ignored). Needs apt-get, dpkg and
# the network (deb.debian.org). The headers are ABI-forward-compatible: a library built
# against them loads into the ONNX Runtime 1.29.0 shipped inside onnxruntime-node.
#
# Usage: bash scripts/fetch-ort-headers.sh     (idempotent; ORT_HEADERS_DIR overrides the target)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEST=${ORT_HEADERS_DIR:-$HERE/.ort-headers}
if [ -f "$DEST/include/onnxruntime/onnxruntime_c_api.h" ]; then
  echo "ONNX Runtime headers already in $DEST/include/onnxruntime"; exit 0
fi
for t in apt-get dpkg; do
  command -v $t >/dev/null || { echo "fetch-ort-headers: '$t' not found (needs a Debian/Ubuntu host)" >&2; exit 2; }
done
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
[ -f "$KEYRING" ] || { echo "fetch-ort-headers: $KEYRING missing (apt-get install debian-archive-keyring)" >&2; exit 2; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
mkdir -p "$work/etc" "$work/lists/partial" "$work/cache/archives/partial"
# a private sources list: Debian trixie main only, none of the host's sources, no state touched
printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: trixie\nComponents: main\nSigned-By: %s\n' \
  "$KEYRING" > "$work/etc/trixie.sources"
o=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$work/etc" -o "Dir::State::Lists=$work/lists"
   -o "Dir::Cache=$work/cache" -o APT::Architecture=amd64)
apt-get "${o[@]}" -qq update
(cd "$work" && apt-get "${o[@]}" -qq download libonnxruntime-dev)
dpkg -x "$work"/libonnxruntime-dev_*.deb "$work/x"
ver=$(dpkg-deb -f "$work"/libonnxruntime-dev_*.deb Version)
mkdir -p "$DEST/include"
rm -rf "$DEST/include/onnxruntime"
cp -r "$work/x/usr/include/onnxruntime" "$DEST/include/"
echo "$ver" > "$DEST/VERSION"
echo "ONNX Runtime headers $ver -> $DEST/include/onnxruntime"
