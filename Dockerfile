# syntax=docker/dockerfile:1
# stampede on Debian 12 with the same Debian packages as a developer machine.
FROM debian:12 AS build
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev \
      prometheus-cpp-dev libyaml-cpp-dev libcli11-dev libspdlog-dev libjs-dygraphs \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY cmake cmake
COPY bench bench
COPY loadtest/openloop loadtest/openloop
COPY config config
COPY handlers handlers
COPY server server
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSTAMPEDE_TESTS=OFF \
    && cmake --build build -j2 --target stampede stampede-openloop

FROM debian:12-slim AS runtime
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libboost-json1.81.0 libboost-url1.81.0 libprometheus-cpp-core1.0 libyaml-cpp0.7 \
      libspdlog1.10 libfmt9 python3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home stampede
COPY --from=build /src/build/stampede /usr/local/bin/stampede
# The clients with deadlines, for the Kubernetes Job (deploy/kubernetes/).
COPY --from=build /src/build/stampede-openloop /usr/local/bin/stampede-openloop
COPY config/stampede.yaml /etc/stampede/stampede.yaml
COPY loadtest/stampede_load /opt/stampede/loadtest/stampede_load
USER stampede
EXPOSE 8080 8081
ENV PYTHONPATH=/opt/stampede/loadtest
# scripts/serve's supervisor, as on a developer's machine: inside the container's memory limit
# (compose's mem_limit, the model's supervisor.memory_limit_mb), it restarts the server after an
# OOM kill with the model's back-off, in the same cgroup, so stampede_oom_kills_total counts
# every kill. The config folder is meant to be mounted from the host: editing the file there
# toggles the mode live (mount the folder, not the file, so an editor's save-by-rename is seen).
ENTRYPOINT ["python3", "-m", "stampede_load.lab.serve", "--binary", "/usr/local/bin/stampede"]
CMD ["--config", "/etc/stampede/stampede.yaml", "--", \
     "--listen", "0.0.0.0:8080", "--admin-listen", "0.0.0.0:8081"]

# The load generator: wrk, the project's Lua script and scripts/load, the same spike a user
# runs by hand against scripts/serve (compose profiles "load" and "fleet").
FROM debian:12-slim AS loadgen
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      wrk curl ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10002 --no-create-home loadgen
COPY loadtest/wrk /stampede/loadtest/wrk
COPY scripts/load /stampede/scripts/load
USER loadgen
ENTRYPOINT ["/bin/sh", "/stampede/scripts/load"]
