#!/usr/bin/env bash
# Builds the af_unix_listener Node-API addon from native/af_unix_listener.c. No node-gyp and no Python: one compiler
# call per variant against the node-api-headers package, so the same headers serve the Linux and the Windows builds.
#
#   native/build.sh [target...]        (default: native)
#
# targets:
#   native             this machine (Linux), AF_UNIX         → native/build/<platform>-<arch>/af_unix_listener.node
#   native-tcptest     this machine, loopback TCP test build → native/build/<platform>-<arch>-tcptest/…
#   win32-x64          Windows x64, AF_UNIX (the product)    → native/build/win32-x64/af_unix_listener.node
#   win32-x64-tcptest  Windows x64, loopback TCP (for Wine)  → native/build/win32-x64-tcptest/af_unix_listener.node
#   all                all of the above
#
# environment:
#   NODE_API_HEADERS_DIR  the node-api-headers package (default: <repo>/node_modules/node-api-headers). The native
#                         targets fall back to the running Node's own include/node when the package is absent; the
#                         Windows targets need the package (its .def file describes node.exe's exports).
#   CC                    compiler for the native targets (default: cc)
#   MINGW_PREFIX          mingw-w64 tool prefix (default: x86_64-w64-mingw32-; Debian: gcc-mingw-w64-x86-64-win32)
#   ADDON_STRICT=1        treat compiler warnings as errors (the tests build this way)
#   ADDON_CFLAGS          extra compiler flags for the native targets (e.g. -fsanitize=address,undefined)
#   ADDON_OUT_DIR         where build/<target>/ goes (default: native/build)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
headers="${NODE_API_HEADERS_DIR:-$repo/node_modules/node-api-headers}"
out_root="${ADDON_OUT_DIR:-$here/build}"
source_file="$here/af_unix_listener.c"
cc="${CC:-cc}"
mingw="${MINGW_PREFIX:-x86_64-w64-mingw32-}"

# The Windows DLL may import from these and nothing else (node.exe provides Node-API; no C++ or GCC runtime DLLs).
expected_imports="KERNEL32.DLL MSVCRT.DLL NODE.EXE WS2_32.DLL"

common_flags=(-std=c11 -O2 -Wall -Wextra -Wshadow -Wstrict-prototypes)
if [[ "${ADDON_STRICT:-0}" == 1 ]]; then common_flags+=(-Werror); fi

include_dir() { # $1 = native | win32
  if [[ -f "$headers/include/node_api.h" && -f "$headers/def/node_api.def" ]]; then
    echo "$headers/include"
    return
  fi
  if [[ "$1" == native ]]; then
    local node_include
    node_include="$(node -p 'require("path").join(process.execPath, "..", "..", "include", "node")')"
    if [[ -f "$node_include/node_api.h" ]]; then
      echo "$node_include"
      return
    fi
  fi
  echo "build.sh: node-api-headers not found at $headers (run npm ci, or set NODE_API_HEADERS_DIR)" >&2
  exit 1
}

native_dir() {
  node -p 'process.platform + "-" + process.arch'
}

build_native() { # $1 = output dir name, $2.. = extra flags
  local dir="$out_root/$1"
  shift
  mkdir -p "$dir"
  # Node-API symbols stay undefined here: the dynamic linker resolves them against the running node binary.
  local include
  include="$(include_dir native)"
  local extra=()
  read -r -a extra <<< "${ADDON_CFLAGS:-}"
  "$cc" "${common_flags[@]}" "${extra[@]}" -I"$include" "$@" -fPIC -shared -pthread -fvisibility=hidden -fstack-protector-strong \
    -D_FORTIFY_SOURCE=2 -o "$dir/af_unix_listener.node.tmp" "$source_file"
  mv "$dir/af_unix_listener.node.tmp" "$dir/af_unix_listener.node"
  echo "built $dir/af_unix_listener.node"
}

import_lib() { # the import library for node.exe's Node-API exports, made from the .def file
  local lib="$out_root/win32-x64-importlib/libnode_api.a"
  if [[ ! -f "$lib" || "$headers/def/node_api.def" -nt "$lib" ]]; then
    mkdir -p "$(dirname "$lib")"
    "${mingw}dlltool" --input-def "$headers/def/node_api.def" --output-lib "$lib.tmp"
    mv "$lib.tmp" "$lib"
  fi
  echo "$lib"
}

check_imports() { # $1 = DLL
  local found
  found="$("${mingw}objdump" -p "$1" | awk '/DLL Name:/ { print toupper($3) }' | sort -u | tr '\n' ' ' | sed 's/ $//')"
  if [[ "$found" != "$expected_imports" ]]; then
    echo "build.sh: $1 imports [$found], expected [$expected_imports]" >&2
    exit 1
  fi
  echo "imports of $1: $found"
}

build_win32() { # $1 = output dir name, $2.. = extra flags
  local dir="$out_root/$1"
  shift
  local lib include
  include="$(include_dir win32)"
  lib="$(import_lib)"
  mkdir -p "$dir"
  # -static-libgcc: no libgcc DLL; --no-insert-timestamp: the same source gives the same bytes; -s: no symbols.
  "${mingw}gcc" "${common_flags[@]}" -I"$include" "$@" -shared -static-libgcc -s -Wl,--no-insert-timestamp \
    -o "$dir/af_unix_listener.node.tmp" "$source_file" "$lib" -lws2_32
  mv "$dir/af_unix_listener.node.tmp" "$dir/af_unix_listener.node"
  check_imports "$dir/af_unix_listener.node"
  echo "built $dir/af_unix_listener.node"
}

targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then targets=(native); fi
for target in "${targets[@]}"; do
  case "$target" in
    native) build_native "$(native_dir)" ;;
    native-tcptest) build_native "$(native_dir)-tcptest" -DAF_UNIX_LISTENER_TCP_TEST ;;
    win32-x64) build_win32 win32-x64 ;;
    win32-x64-tcptest) build_win32 win32-x64-tcptest -DAF_UNIX_LISTENER_TCP_TEST ;;
    all)
      build_native "$(native_dir)"
      build_native "$(native_dir)-tcptest" -DAF_UNIX_LISTENER_TCP_TEST
      build_win32 win32-x64
      build_win32 win32-x64-tcptest -DAF_UNIX_LISTENER_TCP_TEST
      ;;
    *)
      echo "build.sh: unknown target $target (native, native-tcptest, win32-x64, win32-x64-tcptest, all)" >&2
      exit 2
      ;;
  esac
done
