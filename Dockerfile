# The platform image (stack key airflowImage): Apache Airflow 3 plus this project's executor.
#   docker build -t <registry>/airflow-k8s:0.1.0 . && docker push <registry>/airflow-k8s:0.1.0
# The scheduler, api-server, dag-processor, triggerer and the migration Job all run it; task pods
# run the plain apache/airflow image of the same version (workerImage), or one built from this.
#
# Pinned to one Airflow release and Python; pin the digest too in your registry mirror
# (--build-arg AIRFLOW_BASE=apache/airflow:3.3.2-python3.11@sha256:<digest>) so a re-push of the tag
# changes nothing.  The base is a build argument so the same file builds on any image laid out like the
# official one (user airflow, UID 50000, group 0; AIRFLOW_HOME=/opt/airflow; pip on PATH): the
# real-cluster tier (tests/realcluster) builds it on a locally built Airflow base.
ARG AIRFLOW_BASE=apache/airflow:3.3.2-python3.11
FROM ${AIRFLOW_BASE}

# The base image runs as its `airflow` user (UID 50000, group 0) - the user the platform's pods
# run as (runAsUser 50000); pip installs into that user's site-packages, as the image expects.
USER airflow
WORKDIR /opt/airflow/src
COPY --chown=airflow:root pyproject.toml constraints.txt README.md ./
COPY --chown=airflow:root airflow_k8s ./airflow_k8s
COPY --chown=airflow:root executor ./executor
COPY --chown=airflow:root pod_templates ./pod_templates
# Only the executor half is installed (no [infra] extra: no Pulumi in the image; airflow_k8s.infra
# is left out by .dockerignore).  Everything the image already has stays exactly as it is - above
# all its kubernetes client (36.x, which the executor supports): the image's own package list is a
# constraint.  What it lacks comes at this project's pinned versions.
RUN pip freeze | grep -v ' @ ' > /tmp/image-constraints.txt \
 && python -c "import re; \
image = {re.split(r'[=@ ]', l, maxsplit=1)[0].lower().replace('_', '-') for l in open('/tmp/image-constraints.txt') if l.strip() and not l.startswith('#')}; \
open('/tmp/project-constraints.txt', 'w').writelines(l for l in open('constraints.txt') \
    if l.strip() and not l.startswith('#') and l.split('==')[0].strip().lower().replace('_', '-') not in image)"
RUN pip install --no-cache-dir -c /tmp/image-constraints.txt -c /tmp/project-constraints.txt . \
 && rm -rf /opt/airflow/src /tmp/*-constraints.txt \
 && python -c "import airflow_k8s.executor, kubernetes; print('executor installed; kubernetes', kubernetes.__version__)"
WORKDIR /opt/airflow
# The entrypoint and CMD stay the image's own: the platform passes each role's command as args
# (airflow scheduler / api-server / dag-processor / triggerer / db migrate).
