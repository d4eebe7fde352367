# syntax=docker/dockerfile:1
# The Linux image of csi-provider-azure. Stage one installs, compiles and drops the development dependencies; the image
# itself is distroless Node.js: the runtime, the compiled provider, its production dependencies and no shell.
# test/deploy/image-build.test.ts runs this file's steps outside Docker; keep the instructions simple enough for it
# (FROM, ARG, WORKDIR, COPY, RUN, ENV, LABEL, USER, ENTRYPOINT).
#
#   docker build $(bash scripts/pin-base-images.sh Dockerfile) \
#     --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" -t <registry>/provider-azure:0.1.0 .
#
# The base images are pinned by digest at build time: scripts/pin-base-images.sh resolves each tag below to its digest
# of the day (crane or docker buildx) and prints the *_DIGEST build arguments. No digest is committed here: the tags
# get security rebuilds every few weeks, and the machines this file is tested on cannot reach the registries to check
# that a committed digest is still the current one. Without the arguments the build uses the tags.

# Node.js LTS, the same major in both stages.
ARG NODE_MAJOR=22
# "@sha256:…" of each base image (scripts/pin-base-images.sh), or empty: by tag.
ARG BUILD_IMAGE_DIGEST=
ARG RUNTIME_IMAGE_DIGEST=

FROM node:${NODE_MAJOR}-bookworm-slim${BUILD_IMAGE_DIGEST} AS build
WORKDIR /src
# The dependencies first: a source change does not invalidate this layer.
COPY package.json package-lock.json ./
# No install scripts: none of the dependencies needs one to work (protobufjs's only checks its CLI's version).
RUN npm ci --no-audit --no-fund --ignore-scripts
# What `npm run build` compiles (tsconfig.build.json), and the protos the provider loads at run time.
COPY tsconfig.json tsconfig.build.json ./
COPY proto ./proto
COPY bin ./bin
COPY src ./src
COPY test/support ./test/support
COPY bench ./bench
COPY demo ./demo
RUN npm run build
RUN npm prune --omit=dev --no-audit --no-fund --ignore-scripts
# What a DaemonSet never loads (MSAL's browser build, the browser opener of interactive login, type declarations,
# source maps).
COPY scripts/prune-production.js ./scripts/prune-production.js
RUN node scripts/prune-production.js

FROM gcr.io/distroless/nodejs${NODE_MAJOR}-debian12:nonroot${RUNTIME_IMAGE_DIGEST}
# OCI labels: where the image comes from and what it is (VERSION and REVISION from the build command above).
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.source="https://github.com/csi-provider-azure/csi-provider-azure" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.title="csi-provider-azure" \
      org.opencontainers.image.description="Azure Key Vault provider for the Secrets Store CSI Driver" \
      org.opencontainers.image.licenses="MIT"
WORKDIR /app
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
COPY --from=build /src/proto ./proto
COPY --from=build /src/bin ./bin
ENV NODE_ENV=production
# No baked heap cap: bin/csi-provider-azure.js derives it from the container's memory limit (src/cli/heap-cap.ts: 40%
# of the limit, e.g. 102 MiB under the chart's 256Mi), so a changed limit changes it too.
# Not root by default. The DaemonSet runs it as root without capabilities, because the driver's socket directory on
# the host belongs to root; where that directory is writable by this user, the image runs as is.
USER 65532:65532
ENTRYPOINT ["/nodejs/bin/node", "/app/bin/csi-provider-azure.js"]
