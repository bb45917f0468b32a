"""Stack configuration: the ``airflow-k8s:*`` key table, its parsing and the typed model it yields.

No Pulumi import: the stack program, the offline render and other stacks all share it.
"""
