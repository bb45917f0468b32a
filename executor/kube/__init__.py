"""The Kubernetes API side: a thin JSON client, retry policy, the pod watcher and the launcher.

Everything that waits on the network lives here; decisions about task state do not (the engine
owns them and these modules only post messages back to it).
"""
