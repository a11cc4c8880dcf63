# ticklake's image: the pinned Python packages (requirements.lock), Java 17 for Spark and the
# broker, Apache Kafka's jars (resolved from Maven Central by `make setup` into .jars/ and
# checked against config/maven/kafka-broker.sha256 here), run as the non-root user "ticklake".
#
#   docker build -t ticklake .                      # with a registry: python:3.11-slim-bookworm
#   docker build --build-arg BASE_IMAGE=ticklake-base:bookworm \
#       --secret id=pip_cert,src=/etc/ssl/certs/ca-certificates.crt -t ticklake .
#
# The second form is what `make compose-test` does on a machine without an image registry:
# scripts/docker-base.sh builds a Debian bookworm base with debootstrap (docs/docker.md). The
# optional pip_cert secret is the CA bundle pip must trust; it is mounted for the pip step only
# and never stored in a layer.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_DEFAULT_TIMEOUT=180
RUN python3 -m venv /opt/ticklake
WORKDIR /src
# The dependencies first (pinned by requirements.lock), so a code change reuses this layer.
COPY requirements.lock pyproject.toml ./
RUN --mount=type=secret,id=pip_cert \
    if [ -s /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi; \
    /opt/ticklake/bin/python -m pip install -q --upgrade pip \
    && /opt/ticklake/bin/python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' > requirements.txt \
    && /opt/ticklake/bin/python -m pip install -q -c requirements.lock -r requirements.txt
COPY README.md ./
COPY config config
COPY storage storage
COPY producer producer
COPY pipeline pipeline
COPY analytics analytics
COPY visualization visualization
COPY ticklake ticklake
RUN --mount=type=secret,id=pip_cert \
    if [ -s /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi; \
    /opt/ticklake/bin/python -m pip install -q --no-deps .
# Apache Kafka's broker jars and Spark's connectors (Kafka source, delta-spark, S3A), as
# `make setup` resolved them (python -m config.jars), checked against their committed SHA-256
# before they enter the image; --check also sets the connectors in pyspark's spark-defaults.conf
COPY .jars/kafka-broker-4.4.0 /opt/ticklake-jars/kafka-broker-4.4.0
COPY .jars/spark-connectors-4.2.0 /opt/ticklake-jars/spark-connectors-4.2.0
COPY .jars/hadoop-aws-3.5.0 /opt/ticklake-jars/hadoop-aws-3.5.0
RUN /opt/ticklake/bin/python -m config.jars --check --jars-dir /opt/ticklake-jars
# plotly.js' finance bundle for the dashboard's charts (visualization/plotlyjs.py, pinned by
# SHA-256); if the npm registry cannot be reached the dashboard falls back to st.plotly_chart
RUN --mount=type=secret,id=pip_cert \
    if [ -s /run/secrets/pip_cert ]; then export SSL_CERT_FILE=/run/secrets/pip_cert; fi; \
    cd / && /opt/ticklake/bin/python -m visualization.plotlyjs \
    || echo "the image's dashboard draws its charts with st.plotly_chart"

FROM ${BASE_IMAGE}
# Java 17 for Spark; tini reaps children and forwards SIGTERM; curl for health checks.
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
       openjdk-17-jre-headless tini curl procps >/dev/null \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 ticklake \
    && mkdir -p /lake /app /var/lib/ticklake-broker \
    && chown ticklake:ticklake /lake /app /var/lib/ticklake-broker
COPY --from=build /opt/ticklake /opt/ticklake
COPY --from=build /opt/ticklake-jars /opt/ticklake-jars
COPY --chown=ticklake:ticklake pipeline /app/pipeline
ENV PATH=/opt/ticklake/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    TICKLAKE_LAKE_DIR=/lake \
    TICKLAKE_RUN_DIR=/lake/_run \
    TICKLAKE_JARS_DIR=/opt/ticklake-jars \
    TICKLAKE_PYSPARK_PYTHON=/opt/ticklake/bin/python \
    PYSPARK_PYTHON=/opt/ticklake/bin/python
WORKDIR /app
USER ticklake
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["ticklake", "--help"]
