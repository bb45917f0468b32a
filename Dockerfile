# The executor scheduler image that infra deploys (schedulerImage).
#   docker build -t ghcr.io/<org>/airflow-k8s-executor:0.1.0 .
# Only the executor's runtime dependencies are installed: no Pulumi in the image.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY airflow_k8s ./airflow_k8s
COPY executor ./executor
COPY pod_templates ./pod_templates
RUN pip install --no-cache-dir --prefix=/install -c constraints.txt .

FROM python:3.11-slim
COPY --from=build /install /usr/local
# A fixed non-root UID/GID matching the Deployment's securityContext (runAsUser 10001).
RUN groupadd --gid 10001 executor && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin executor
USER 10001:10001
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
EXPOSE 9102
# No ENTRYPOINT: the Deployment passes the whole command line as args, which replace CMD.
CMD ["python", "-m", "airflow_k8s.executor", "run", "--config", "/opt/airflow/airflow.cfg"]
