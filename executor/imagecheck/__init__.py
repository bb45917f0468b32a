"""Image checks: does a worker or scheduler image fit the platform's pods, before tasks use it?

* :mod:`.incontainer` runs *inside* the image (the preflight Job infra creates per image on
  ``pulumi up``): standard library only and self-contained, because a worker image normally does
  not have this package - infra ships the module's source as the Job's ``python -c`` program.
* :mod:`.offline` runs the same checks, as far as they can be done without running the image,
  against a local image (an unpacked root filesystem, an OCI layout or a ``docker save`` archive,
  read by :mod:`.layout`): ``python -m airflow_k8s.infra check-image``.

This layer imports nothing else of the executor (and Airflow only dynamically, inside the image,
as the thing being checked).
"""
