"""Root conftest: registers the fake Kubernetes API server's fixtures for every test."""

pytest_plugins = ["tests.fakekube.fixtures"]
