# syntax=docker/dockerfile:1
# The Linux image of csi-provider-azure. Stage one installs, compiles and drops the development dependencies; the image
# itself is distroless Node.js: the runtime, the compiled provider, its production dependencies and no shell.
# test/deploy/image-build.test.ts runs this file's steps outside Docker; keep the instructions simple enough for it
# (FROM, ARG, WORKDIR, COPY, RUN, ENV, USER, ENTRYPOINT).

# Node.js LTS, the same major in both stages.
ARG NODE_MAJOR=22

FROM node:${NODE_MAJOR}-bookworm-slim AS build
WORKDIR /src
# The dependencies first: a source change does not invalidate this layer.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
# What `npm run build` compiles (tsconfig.build.json), and the protos the provider loads at run time.
COPY tsconfig.json tsconfig.build.json ./
COPY proto ./proto
COPY bin ./bin
COPY src ./src
COPY test/support ./test/support
COPY bench ./bench
COPY demo ./demo
RUN npm run build
RUN npm prune --omit=dev --no-audit --no-fund

FROM gcr.io/distroless/nodejs${NODE_MAJOR}-debian12:nonroot
WORKDIR /app
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
COPY --from=build /src/proto ./proto
COPY --from=build /src/bin ./bin
ENV NODE_ENV=production
# V8 grows its heap lazily, towards ~230 MB RSS under sustained mounts; capped, it collects sooner and the process stays
# near 150 MB, well inside the chart's 256Mi limit. The provider keeps little on the heap (credentials, clients).
ENV NODE_OPTIONS=--max-old-space-size=96
# Not root by default. The DaemonSet runs it as root without capabilities, because the driver's socket directory on
# the host belongs to root; where that directory is writable by this user, the image runs as is.
USER 65532:65532
ENTRYPOINT ["/nodejs/bin/node", "/app/bin/csi-provider-azure.js"]
