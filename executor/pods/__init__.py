"""From a task to a pod manifest, offline: templates, the merge, schema and Pod Security checks.

Pure functions over plain dicts (no API calls); capacity math for ``tier: auto`` lives here too
because it reads pod specs the same way the factory writes them.
"""
