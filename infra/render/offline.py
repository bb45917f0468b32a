"""Run a Pulumi program offline, under mocks, and record what it would deploy.

No CLI, no plugin, no cluster: :func:`evaluate` installs :func:`pulumi.runtime.set_mocks` with a
monitor that records every registered resource (type, name, parent, inputs as the provider would
receive them - camelCase, with secret values still wrapped as secrets), sets the config with
:func:`pulumi.runtime.set_all_config`, runs the program (by default the real stack program,
:func:`airflow_k8s.infra.stack.main`) and resolves the stack's exported outputs together with their
secretness.  Tests and the offline render both use it, so they look at the same thing.

The mock echoes inputs back as outputs: a resource's ``metadata.name`` output is the name the
program asked for, which is also what the Kubernetes provider returns for an explicit name.
``random:RandomBytes`` gets a fixed, obviously fake value derived from its name (the render never
sees a real generated secret).  ``unknown_outputs=True`` runs a *preview* in which every resource
output is unknown - what ``pulumi preview`` sees on a new cluster or with a provider built from
another resource's output - to prove that names and metadata are known without outputs.

Each :class:`Recorded` also keeps the resource options that decide what ``pulumi up`` does to
the object (``protect``, ``retainOnDelete``, ``deleteBeforeReplace``, ``replaceOnChanges``,
``dependsOn``), read from the registration request like the engine reads them.
Numbers come back through protobuf as floats (``replicas: 1.0``); :mod:`airflow_k8s.infra.render.manifests`
normalizes them.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import mocks, rpc, settings

SECRET_SIG = rpc._special_sig_key  # the "4dabf18193072939515e22adb298388d" marker key
SECRET_MARK = rpc._special_secret_sig


@dataclass(frozen=True)
class Recorded:
    """One registered resource."""

    urn: str
    type: str
    name: str
    parent: str
    custom: bool
    inputs: dict[str, Any]
    provider: str = ""
    protect: bool = False
    retain_on_delete: bool = False
    delete_before_replace: bool = False
    replace_on_changes: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()

    @property
    def parent_name(self) -> str:
        return self.parent.rsplit("::", 1)[-1] if self.parent else ""


@dataclass(frozen=True)
class OutputValue:
    value: Any
    secret: bool


@dataclass
class Evaluation:
    resources: list[Recorded] = field(default_factory=list)
    outputs: dict[str, OutputValue] = field(default_factory=dict)
    # the default Kubernetes provider's update-in-place flags it ran with (nothing else of the config)
    provider_flags: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # what `pulumi preview` would print as warnings

    def of_type(self, type_: str) -> list[Recorded]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, name: str) -> Recorded:
        found = [r for r in self.resources if r.type == type_ and r.name == name]
        if len(found) != 1:
            raise KeyError(f"{len(found)} resources of type {type_} named {name}")
        return found[0]

    def kubernetes(self) -> list[Recorded]:
        """The Kubernetes objects (custom resources of the kubernetes provider)."""
        return [r for r in self.resources if r.custom and r.type.startswith("kubernetes:")]

    def plain_outputs(self) -> dict[str, Any]:
        return {k: v.value for k, v in self.outputs.items() if not v.secret}


LOGGER = "airflow_k8s.offline"  # the program's pulumi.log messages (propagated to the root logger too)
RANDOM_BYTES = "random:index/randomBytes:RandomBytes"


class _WarningCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


PROVIDER_FLAG_KEYS = ("kubernetes:enableConfigMapMutable", "kubernetes:enableSecretMutable")


def fake_random_bytes(name: str) -> dict[str, str]:
    """Fixed 32 "random" bytes for a RandomBytes called ``name`` (mocks only; never a real secret)."""
    raw = hashlib.sha256(f"offline-render-fake:{name}".encode()).digest()
    return {"base64": base64.b64encode(raw).decode(), "hex": raw.hex()}


class _Mocks(pulumi.runtime.Mocks):
    def __init__(self, unknown_outputs: bool = False) -> None:
        self.unknown_outputs = unknown_outputs

    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str | None, dict[Any, Any]]:
        if self.unknown_outputs:
            return None, {}  # in a preview, outputs the provider does not return are unknown
        outputs = dict(args.inputs)
        if args.typ == RANDOM_BYTES:
            outputs.update(fake_random_bytes(args.name))
        return f"{args.name}-id", outputs

    def call(self, args: mocks.MockCallArgs) -> tuple[dict[Any, Any], list[tuple[str, str]] | None]:
        return {}, None


class _RecordingMonitor(mocks.MockMonitor):
    def __init__(self, mocks_: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks_)
        self.recorded: list[Recorded] = []

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            inputs = rpc.deserialize_properties(request.object, keep_unknowns=True)
            urn = self.make_urn(request.parent, request.type, request.name)
            self.recorded.append(
                Recorded(
                    urn,
                    request.type,
                    request.name,
                    request.parent,
                    bool(request.custom),
                    dict(inputs),
                    request.provider,
                    protect=bool(request.protect),
                    retain_on_delete=bool(request.retainOnDelete),
                    delete_before_replace=bool(request.deleteBeforeReplace),
                    replace_on_changes=tuple(request.replaceOnChanges),
                    depends_on=tuple(request.dependencies),
                )
            )
        return response


def is_secret_value(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIG) == SECRET_MARK


def walk_secrets(value: Any, path: str = "") -> Iterable[str]:
    """JSON paths of every secret-wrapped value inside ``value``."""
    if is_secret_value(value):
        yield path or "(root)"
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from walk_secrets(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk_secrets(item, f"{path}[{index}]")


def unwrap(value: Any) -> Any:
    """``value`` with secret wrappers replaced by their plaintext (caller must redact)."""
    if is_secret_value(value):
        return unwrap(value.get("value"))
    if isinstance(value, dict):
        return {key: unwrap(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unwrap(item) for item in value]
    return value


def evaluate(
    config: Mapping[str, str],
    *,
    secret_keys: Iterable[str] = (),
    project: str = "airflow-k8s",
    stack: str = "dev",
    program: Callable[[], Any] | None = None,
    unknown_outputs: bool = False,
) -> Evaluation:
    """Run ``program`` (default: the stack program) under mocks with ``config`` (full keys).

    ``unknown_outputs``: a preview in which no resource output is known (module docstring).
    """
    if program is None:
        from airflow_k8s.infra.stack import main as stack_main

        program = stack_main
    run: Callable[[], Any] = program
    mocks_ = _Mocks(unknown_outputs)
    monitor = _RecordingMonitor(mocks_)
    settings.ROOT.set(None)  # a fresh root Stack for every evaluation
    logger = logging.getLogger(LOGGER)
    collector = _WarningCollector()
    logger.addHandler(collector)
    pulumi.runtime.set_mocks(
        mocks_, project=project, stack=stack, preview=unknown_outputs, monitor=monitor, logger=logger
    )
    pulumi.runtime.set_all_config(dict(config), list(secret_keys))
    flags = {key: value for key, value in config.items() if key in PROVIDER_FLAG_KEYS}
    result = Evaluation(provider_flags=flags)

    async def resolve(exported: dict[str, Any]) -> bool:
        for key, value in exported.items():
            output = pulumi.Output.from_input(value)
            result.outputs[key] = OutputValue(await output.future(), await output.is_secret())
        return True

    @pulumi.runtime.test
    def _main() -> Any:
        run()
        root = settings.get_root_resource()
        exported = dict(getattr(root, "outputs", {}) or {})
        return pulumi.Output.from_input(resolve(exported))

    try:
        _main()
    finally:
        logger.removeHandler(collector)
    result.resources = list(monitor.recorded)
    result.warnings = collector.messages
    return result
