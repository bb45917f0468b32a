"""airflow-k8s-platform: Airflow 3's Kubernetes executor as a platform, as code.

The distribution installs two halves under this one name, so a Pulumi program's own ``infra``
package (or anyone's ``executor`` module) can never shadow them:

* :mod:`airflow_k8s.executor` - the Airflow executor and its engine (no Pulumi import, ever);
* :mod:`airflow_k8s.infra` - the Pulumi components and the offline render.

In the repository the two halves live in ``executor/`` and ``infra/`` at the top level; this
folder holds symbolic links to them (and to ``pod_templates/``, shipped as package data), so the
same ``airflow_k8s.*`` import names work in a checkout, in the wheel and in the scheduler image.
"""

__version__ = "0.1.0"
