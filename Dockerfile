# Multi-stage build of Sluice. cgo stays on: pg_query_go (the SQL parser
# used by rewrite/) is C code compiled into the binary.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=docker
RUN CGO_ENABLED=1 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/sluice ./cmd/sluice

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home /nonexistent --shell /usr/sbin/nologin sluice
COPY --from=build /out/sluice /usr/local/bin/sluice
COPY config.yaml /etc/sluice/config.yaml
USER sluice
EXPOSE 6432
ENTRYPOINT ["/usr/local/bin/sluice"]
CMD ["--config", "/etc/sluice/config.yaml"]
