"""What a task is to the executor: its key, command and overrides, its pod identity, its outcome.

Frozen values plus the small stores outcomes are recorded in.  Imports only the contract layer.
"""
