# syntax=docker/dockerfile:1
# The pai-cors-sidecar image (built and exercised for real by `npm run test:image`, test/image/check.ts).
#
# Contract the Helm chart relies on (charts/pai-cors-sidecar):
#   - runs as UID:GID 10001:10001, writes nothing but /tmp (the chart sets readOnlyRootFilesystem and
#     mounts an emptyDir there);
#   - the app lives in /opt/pai-cors-sidecar (dist/, production node_modules/, package.json);
#   - ENTRYPOINT is node itself (PID 1 receives SIGTERM and the sidecar drains; `npm start` would not
#     forward it), CMD reads the ConfigMap the chart mounts at /etc/pai-cors-sidecar/config.yaml;
#   - ports 8000 (public) and 9090 (admin: /metrics /livez /readyz). No HEALTHCHECK: Kubernetes probes
#     /livez and /readyz instead, and a HEALTHCHECK would need a shell or curl in the image.
#
# The base: Node.js 24 LTS on Debian 12 (bookworm) slim, pinned by exact tag AND by the digest of its
# multi-arch index, so a rebuild never picks up a different base silently. Every stage uses it, so
# there is one pin to update and the build stage's npm matches the runtime's node.
# To update: pick the newest 24.x tag (https://hub.docker.com/_/node), then
#   docker buildx imagetools inspect node:24.x.y-bookworm-slim   # the top-level "Digest:" line
# (or `skopeo inspect --raw docker://node:24.x.y-bookworm-slim | sha256sum`), and replace both the tag
# and the digest below in one commit; `npm run test:image` then builds and checks the result
# (it assembles a local equivalent of this reference, see test/image/base.ts).
ARG NODE_IMAGE=node:24.21.0-bookworm-slim@sha256:0e0ff40c39bc087845bfb27465a0df4ea419520094bc35842ff83dd8cbe6f9b6

# --- build: the TypeScript compiler needs the dev dependencies --------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: the only install script in the tree belongs to the `node` devDependency, which
# downloads a second Node 24 binary for the npm scripts on hosts whose own node is older. The base
# already is Node 24, so skipping it saves a ~50 MB download; nothing else needs a script.
# The cache mount keeps npm's download cache between builds (BuildKit and buildah both support it).
RUN --mount=type=cache,target=/root/.npm,sharing=locked \
    npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY sidecar ./sidecar
# tsc is started with the base's node, not through `npm run build`: npm puts node_modules/.bin first
# on PATH, where `node` is the devDependency's (absent, its script was skipped).
RUN node node_modules/typescript/bin/tsc -p tsconfig.build.json

# --- deps: production dependencies only, from the same lockfile -------------------------------------
# A separate stage rather than `npm prune` in the build stage: nothing the build installed can leak
# into the runtime layer. --omit=dev also keeps the `node` devDependency out.
FROM ${NODE_IMAGE} AS deps
WORKDIR /opt/pai-cors-sidecar
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm,sharing=locked \
    npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# --- runtime ----------------------------------------------------------------------------------------
# The slim base rather than distroless: one base to pin, update and assemble for the image test, and
# node at the same path in every stage. Nothing at runtime uses its shell: the ENTRYPOINT is exec-form
# node, there is no HEALTHCHECK, and the chart runs it non-root on a read-only root filesystem.
FROM ${NODE_IMAGE}
# Re-declared so the label below sees the value the FROM lines used.
ARG NODE_IMAGE
ARG VERSION=0.0.0-dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="pai-cors-sidecar" \
      org.opencontainers.image.description="CORS-terminating, streaming reverse-proxy sidecar for the Private AI de-identification container" \
      org.opencontainers.image.source="https://github.com/pai-cors-sidecar/pai-cors-sidecar" \
      org.opencontainers.image.url="https://github.com/pai-cors-sidecar/pai-cors-sidecar" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="${NODE_IMAGE}"
ENV NODE_ENV=production
WORKDIR /opt/pai-cors-sidecar
# Owned by root and read-only to the runtime user: the process can read its code but never change it,
# even where the root filesystem is not mounted read-only.
COPY --from=deps /opt/pai-cors-sidecar/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
USER 10001:10001
EXPOSE 8000 9090
# This replaces the base's docker-entrypoint.sh (a shell script); the absolute path does not depend on
# PATH. node runs as PID 1 and handles SIGTERM itself (sidecar/main.ts), so no init wrapper is needed.
ENTRYPOINT ["/usr/local/bin/node", "/opt/pai-cors-sidecar/dist/main.js"]
CMD ["--config", "/etc/pai-cors-sidecar/config.yaml"]
