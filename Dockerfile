# uptun public server, for single-port platforms (Heroku, Fly, Render) and VPSs.
# The platform sets PORT; the server listens on 0.0.0.0:$PORT (8080 without it).
#   docker build -t uptun .
#   docker run -e UPTUN_AGENT_TOKEN=s3cret -e PORT=8080 -p 8080:8080 uptun
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p public-server -p local-agent

FROM debian:bookworm-slim
RUN useradd --system --no-create-home uptun
COPY --from=build /src/target/release/public-server /src/target/release/local-agent /usr/local/bin/
USER uptun
ENV PORT=8080
EXPOSE 8080
CMD ["public-server"]
