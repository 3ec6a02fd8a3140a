# syntax=docker/dockerfile:1
# plyrtasks: one static binary (CGO off: the embedded SQLite driver is pure
# Go) on a distroless base, running as an unprivileged user.
#
#   docker build -t plyrtasks --build-arg VERSION=$(git describe --tags --always) .
#   docker run --rm -p 127.0.0.1:8080:8080 -e API_TOKEN=… -e DASHBOARD_USER=admin \
#     -e DASHBOARD_PASSWORD=… plyrtasks                          # serve (embedded Redis/SQLite)
#   docker run --rm -e REDIS_URL=redis://… -e API_TOKEN=… … plyrtasks worker
#
# HTTP_ADDR is :8080 (every interface) in the image, so API_TOKEN and a
# dashboard account are required: start-up refuses without them.

FROM golang:1.26-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-trimpath
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/root/go/pkg/mod go mod download
COPY . .
ARG VERSION=""
RUN --mount=type=cache,target=/root/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -ldflags="-s -w -X main.version=${VERSION}" -o /out/plyrtasks ./cmd/plyrtasks \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/plyrtasks /usr/local/bin/plyrtasks
# DATA_DIR (embedded SQLite, local export storage) must be writable by the
# nonroot user (65532); mount a volume here to keep it.
COPY --from=build --chown=65532:65532 /out/data /data
ENV DATA_DIR=/data HTTP_ADDR=:8080 LOG_FORMAT=json
USER 65532:65532
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 CMD ["plyrtasks", "healthcheck"]
ENTRYPOINT ["plyrtasks"]
CMD ["serve"]
