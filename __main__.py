"""Pulumi program entry point: ``pulumi up`` runs this file; the program is infra.stack."""

from infra.stack import main

main()
