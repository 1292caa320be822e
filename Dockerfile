# syntax=docker/dockerfile:1
# Ringside image (the default, last stage) and the Go example service image:
#   docker build -t ringside/ringside .
#   docker build --target example-origin -t ringside/example-origin .
# The build steps live in docker/build.sh, which integration/docker/check.sh also runs
# outside Docker. RUST_VERSION must be at least the highest rust-version in Cargo.lock's
# Linux dependency graph (check.sh verifies it).
ARG RUST_VERSION=1.95
ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS origin-build
WORKDIR /src
COPY examples/go.mod examples/go.sum examples/
RUN cd examples && go mod download
COPY docker/build.sh docker/build.sh
COPY examples examples
RUN sh docker/build.sh origin /out

FROM gcr.io/distroless/static-debian12:nonroot AS example-origin
COPY --from=origin-build /out/ /
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/origin"]
CMD ["-addr", "127.0.0.1:8080"]

FROM rust:${RUST_VERSION}-bookworm AS ringside-build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    sh docker/build.sh ringside /out

FROM gcr.io/distroless/cc-debian12:nonroot AS ringside
COPY --from=ringside-build /out/ /
# The chart runs it as 2102 too (runAsUser); `ringside iptables --proxy-uid` excludes this uid.
USER 2102:2102
EXPOSE 4143 9901
ENTRYPOINT ["/usr/local/bin/ringside"]
CMD ["run", "-c", "/etc/ringside/ringside.yaml"]
