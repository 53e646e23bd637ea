# syntax=docker/dockerfile:1
# Health&Med FHIR R4 server. Three stages: production dependencies, TypeScript build, slim runtime.
# Runtime configuration is the environment described in CONTRACT.md section 1 (PORT, BASE_URL, DATABASE_URL...).

ARG NODE_IMAGE=node:22-bookworm-slim

# --- production dependencies only (no TypeScript, jest, ...) ---
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# --- build: full dependencies, compile src/ to dist/src/ ---
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# --- runtime ---
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    PORT=8080 \
    DATA_DIR=/data
WORKDIR /app
COPY --from=deps --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
COPY --chown=node:node package.json package-lock.json ./
COPY --chown=node:node migrations ./migrations
COPY --chown=node:node fhir-profiles ./fhir-profiles
# DATA_DIR holds the embedded database (when DATABASE_URL is unset), local attachments and the local key file.
RUN mkdir -p /data && chown node:node /data
VOLUME ["/data"]
# The node image's unprivileged user (uid 1000).
USER node
EXPOSE 8080
# Liveness only; readiness (/readyz) is for orchestrators that route traffic. Node 22 has fetch, no curl needed.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz').then(r=>process.exit(r.status===200?0:1),()=>process.exit(1))"]
# Run node directly (not npm) so SIGTERM reaches the server for graceful shutdown.
CMD ["node", "dist/src/main.js"]
