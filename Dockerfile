# odg: the service and its extensions (`odg serve`, `odg enumerate`, `odg cache-manager`) in one
# small image that runs as a non-root user. Build from the repository root:
#   docker build -t odg:0.1.0 .
# The Helm chart (charts/odg) runs it with a read-only root filesystem; the cache lives on a volume.

# Build stage: the workspace's toolchain (rust-version in Cargo.toml is the minimum).
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p odg \
 && install -D -m 0755 target/release/odg /out/usr/local/bin/odg \
 && mkdir -p /out/var/cache/odg

# Runtime: glibc and libgcc only (TLS is rustls; no OpenSSL), no shell, user 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/usr/local/bin/odg /usr/local/bin/odg
COPY --from=build --chown=65532:65532 /out/var/cache/odg /var/cache/odg
USER 65532:65532
EXPOSE 5000 9090
ENTRYPOINT ["/usr/local/bin/odg"]
CMD ["serve", "--listen", "0.0.0.0:5000", "--admin-listen", "0.0.0.0:9090", "--cache-dir", "/var/cache/odg"]
