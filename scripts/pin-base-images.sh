#!/usr/bin/env bash
# Resolves the base images of a Dockerfile to their digests of today and prints the build arguments that pin them, for
# the image build to use:
#
#   docker build $(bash scripts/pin-base-images.sh Dockerfile) -t <registry>/provider-azure:<version> .
#   docker buildx build $(bash scripts/pin-base-images.sh windows.Dockerfile) --platform windows/amd64 -f windows.Dockerfile …
#
# Each FROM line of our Dockerfiles ends in a digest argument (`FROM node:22-bookworm-slim${BUILD_IMAGE_DIGEST}`), empty
# by default; this prints `--build-arg BUILD_IMAGE_DIGEST=@sha256:…` for each, so the build pulls exactly that image
# (the multi-platform index: every platform resolves through it) and the digests stand in the build command and log.
# The digests are not committed: tags like node:22-bookworm-slim are rebuilt for security fixes every few weeks, and
# the machines this repository is tested on cannot reach the registries to check a committed digest is current.
#
# Needs `crane` (go-containerregistry) or `docker buildx imagetools`; fails, printing nothing, if a digest cannot be had.
# ARG defaults are used for the tag (NODE_MAJOR, WINDOWS_VERSION); override them as `NAME=value` arguments after the
# Dockerfile, as the build's own --build-arg would (e.g. WINDOWS_VERSION=ltsc2019).
set -euo pipefail

dockerfile="${1:-Dockerfile}"
shift || true
[[ -f "$dockerfile" ]] || { echo "pin-base-images.sh: no Dockerfile at $dockerfile" >&2; exit 1; }

declare -A args=()
for override in "$@"; do
  [[ "$override" == *=* ]] || { echo "pin-base-images.sh: expected NAME=value, got \"$override\"" >&2; exit 1; }
  args["${override%%=*}"]="${override#*=}"
done

digest_of() {
  local ref="$1" out
  if command -v crane > /dev/null; then
    out="$(crane digest "$ref")"
  elif command -v docker > /dev/null; then
    out="$(docker buildx imagetools inspect "$ref" --format '{{.Manifest.Digest}}')"
  else
    echo "pin-base-images.sh: neither crane nor docker (buildx) is installed; cannot resolve $ref" >&2
    return 1
  fi
  local raw="$out"
  out="$(printf '%s' "$out" | tr -d '[:space:]')"
  if [[ ! "$out" =~ ^sha256:[0-9a-f]{64}$ ]]; then
    echo "pin-base-images.sh: $ref resolved to \"$raw\", not a sha256 digest" >&2
    return 1
  fi
  printf '%s' "$out"
}

expand() {
  local text="$1" name
  while [[ "$text" =~ \$\{([A-Za-z_][A-Za-z0-9_]*)\} ]]; do
    name="${BASH_REMATCH[1]}"
    text="${text//\$\{$name\}/${args[$name]-}}"
  done
  printf '%s' "$text"
}

result=()
seen_from=0
while IFS= read -r line || [[ -n "$line" ]]; do
  if [[ $seen_from -eq 0 && "$line" =~ ^ARG[[:space:]]+([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]]; then
    name="${BASH_REMATCH[1]}"
    [[ -v "args[$name]" ]] || args["$name"]="${BASH_REMATCH[2]}"
    continue
  fi
  [[ "$line" =~ ^FROM[[:space:]]+(--[^[:space:]]+[[:space:]]+)*([^[:space:]]+) ]] || continue
  seen_from=1
  image="${BASH_REMATCH[2]}"
  if [[ ! "$image" =~ ^(.*)\$\{([A-Za-z_][A-Za-z0-9_]*_DIGEST)\}$ ]]; then
    echo "pin-base-images.sh: FROM $image in $dockerfile has no \${…_DIGEST} argument to pin it with" >&2
    exit 1
  fi
  digest_arg="${BASH_REMATCH[2]}"
  ref="$(expand "${BASH_REMATCH[1]}")"
  if [[ "$ref" == *'$'* || -z "$ref" ]]; then
    echo "pin-base-images.sh: cannot expand FROM $image" >&2
    exit 1
  fi
  digest="$(digest_of "$ref")"
  echo "pin-base-images.sh: $ref is $digest" >&2
  result+=("--build-arg" "$digest_arg=@$digest")
done < "$dockerfile"

[[ ${#result[@]} -gt 0 ]] || { echo "pin-base-images.sh: no FROM line in $dockerfile" >&2; exit 1; }
printf '%s\n' "${result[*]}"
