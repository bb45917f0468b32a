"""Pod templates: found safely, parsed strictly, validated once, cached until the file changes.

A task names its template the way Airflow's ``pod_template_file`` does, either as a bare file
name (``heavy_computation``, ``heavy_computation.yaml``, ``.yml``) or as an absolute path inside
the *logical* template directory airflow.cfg uses (``pod_template_dir``, by default
``/opt/airflow/pod_templates``).  :class:`TemplateStore` maps both onto the *physical* directory
the files really live in (``./pod_templates`` in a checkout, the ConfigMap mount in the image),
so a task written for the cluster loads the same file on a laptop.

Reference rules, and why (template references come from DAG authors, so they are input):

* no ``..`` components, NUL, backslashes or control characters - no way to climb out;
* absolute paths must lie directly in the logical directory - ``/etc/passwd`` is refused;
* no subdirectories and no hidden names: the directory is a ConfigMap mount, whose keys are
  flat file names; its only subdirectories are the kubelet's own ``..data`` /
  ``..<timestamp>`` internals, which are not templates.  The template namespace is therefore
  exactly the ConfigMap's keys;
* the file's real path (symlinks resolved) must stay inside the physical directory.  ConfigMap
  files are symlinks into ``..data/``, which is inside, so they load; a link to ``/etc`` does not;
* a missing template is an error that lists the templates that do exist.

Document rules (each error names the file):

* YAML is parsed with ``yaml.safe_load`` semantics, plus: duplicate mapping keys are errors
  (the line and key are named; YAML would silently keep the last one), aliases are refused
  (no alias-expansion blow-ups, and Kubernetes manifests never need them), exactly one document,
  a mapping at the top, at most 1 MiB (a ConfigMap's limit);
* ``apiVersion: v1`` and ``kind: Pod`` - a Deployment is not a pod template;
* strict schema validation at :data:`airflow_k8s.executor.pods.schema.KUBERNETES_VERSION` (unknown fields,
  malformed quantities, requests above limits);
* Pod Security Standards "restricted" (:mod:`airflow_k8s.executor.pods.security`);
* the ``base`` container sets no ``command``: the executor passes the task's command as
  ``args``, and a template ``command`` (the seed's ``airflow serve-logs``) would run instead of
  the task in every pod.

Parsed templates are cached per file, keyed by (real path, mtime_ns, size): an unchanged file is
parsed and validated once, an updated ConfigMap (new ``..data`` target, hence new real path) or
an edited file is picked up on the next :meth:`TemplateStore.load`.  Callers always get a deep
copy, so merging task overrides into a template never changes the cached one.
"""

from __future__ import annotations

import json
import os
import posixpath
import threading
import time
from collections.abc import Callable, Hashable
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

import yaml

from airflow_k8s.executor.contract import jsonfast
from airflow_k8s.executor.contract.config import DEFAULT_TEMPLATE_DIR
from airflow_k8s.executor.contract.errors import PodPolicyError, SchemaError, TemplateError
from airflow_k8s.executor.pods.schema import validate_manifest
from airflow_k8s.executor.pods.security import check_restricted

TEMPLATE_SUFFIXES = (".yaml", ".yml")
MAX_TEMPLATE_BYTES = 1024 * 1024
_MAX_DERIVED = 256  # values kept by TemplateStore.derived (a few per template and tier)
T = TypeVar("T")
BASE_CONTAINER = "base"

_Identity = tuple[str, int, int]


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses duplicate mapping keys and aliases."""

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            mark = event.start_mark
            raise TemplateError(
                f"{self.name}: line {mark.line + 1}: YAML aliases (*{event.anchor}) are not allowed in pod templates"
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: dict[object, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:  # pragma: no cover - scalar keys are hashable
                continue
            if first is not None:
                raise TemplateError(f"{self.name}: line {line}: duplicate key {key!r} (first defined on line {first})")
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def parse_template(text: str, *, source: str) -> dict[str, Any]:
    """Parse and validate one pod template's text; ``source`` names it in every error.

    Applies every document rule of the module docstring and returns the template as a dict.
    Raises :class:`TemplateError` (schema and policy failures are chained as ``__cause__``).
    """
    document = _parse_yaml(text, source=source)
    if not isinstance(document, dict):
        found = "an empty document" if document is None else f"a {type(document).__name__}"
        raise TemplateError(f"{source}: a pod template must be a YAML mapping, found {found}")
    try:
        json.dumps(document, allow_nan=False)
    except (TypeError, ValueError) as exc:  # e.g. an unquoted date, which YAML turns into a date object
        raise TemplateError(f"{source}: values must be JSON-compatible (quote dates and timestamps): {exc}") from exc
    api_version, kind = document.get("apiVersion"), document.get("kind")
    if api_version != "v1" or kind != "Pod":
        raise TemplateError(
            f"{source}: a pod template must have apiVersion v1 and kind Pod, found apiVersion {api_version!r} "
            f"and kind {kind!r}"
        )
    try:
        validate_manifest(document, where=source)
        check_restricted(document, where=source)
    except (SchemaError, PodPolicyError) as exc:
        raise TemplateError(str(exc)) from exc
    spec = document.get("spec") or {}
    for index, container in enumerate(spec.get("containers") or []):
        if isinstance(container, dict) and container.get("name") == BASE_CONTAINER and container.get("command"):
            raise TemplateError(
                f"{source}: spec.containers[{index}] ({BASE_CONTAINER}) must not set command: the executor passes "
                "the task's command as args, and a template command would run instead of the task"
            )
    return document


def _parse_yaml(text: str, *, source: str) -> object:
    loader = _StrictLoader(text)
    loader.name = source
    try:
        if not loader.check_data():
            return None
        document = loader.get_data()
        if loader.check_data():
            line = loader.peek_event().start_mark.line + 1
            raise TemplateError(f"{source}: line {line}: a pod template must hold exactly one YAML document")
        return document
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        reason = " ".join(part for part in (exc.context, exc.problem) if part)
        raise TemplateError(f"{source}: {where}invalid YAML: {reason}") from exc
    except yaml.YAMLError as exc:
        raise TemplateError(f"{source}: invalid YAML: {exc}") from exc
    finally:
        loader.dispose()


class TemplateStore:
    """The pod templates of one directory: resolve references, load validated copies.

    ``directory`` is where the files physically are; ``logical_dir`` is the directory airflow.cfg
    and tasks refer to (``config.pod_template_dir``).  Safe to share between threads.
    """

    def __init__(
        self, directory: str | Path, *, logical_dir: str = DEFAULT_TEMPLATE_DIR, recheck_seconds: float = 1.0
    ) -> None:
        if not isinstance(logical_dir, str) or not posixpath.isabs(logical_dir):
            raise TemplateError(f"logical template directory must be an absolute path, got {logical_dir!r}")
        self.directory = Path(directory)
        self.logical_dir = posixpath.normpath(logical_dir)
        if not self.directory.is_dir():
            raise TemplateError(f"pod template directory {str(self.directory)!r} does not exist or is not a directory")
        self._real_directory = Path(os.path.realpath(self.directory))
        self._cache: dict[str, tuple[_Identity, dict[str, Any]]] = {}
        self._recent: dict[str, tuple[float, dict[str, Any], str]] = {}  # ref -> (checked at, document, file)
        self._derived: dict[tuple[str, object], tuple[dict[str, Any], object]] = {}  # (ref, key) -> (document, value)
        self.recheck_seconds = recheck_seconds
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TemplateStore({str(self.directory)!r}, logical_dir={self.logical_dir!r})"

    def names(self) -> list[str]:
        """File names of the templates in the directory (``*.yaml``, ``*.yml``), sorted.

        Each name is a valid reference for :meth:`resolve` and :meth:`load`.
        """
        out = []
        try:
            with os.scandir(self.directory) as entries:
                for entry in entries:
                    if entry.name.startswith(".") or not entry.name.endswith(TEMPLATE_SUFFIXES) or entry.is_dir():
                        continue
                    out.append(entry.name)
        except OSError as exc:
            raise TemplateError(f"cannot list pod templates in {str(self.directory)!r}: {exc.strerror or exc}") from exc
        return sorted(out)

    def resolve(self, ref: str) -> Path:
        """The file ``ref`` names, as a path in ``directory`` (symlinks not resolved).

        Raises :class:`TemplateError` for unsafe or malformed references, files whose real path
        leaves the directory, and missing templates (listing the existing ones).
        """
        return self._resolve(ref)[0]

    def _resolve(self, ref: str) -> tuple[Path, str]:
        """(path in ``directory``, checked real path) of the template ``ref`` names."""
        name = self._file_name(ref)
        candidates = [name] if name.endswith(TEMPLATE_SUFFIXES) else [name + suffix for suffix in TEMPLATE_SUFFIXES]
        found = [candidate for candidate in candidates if os.path.lexists(self.directory / candidate)]
        if not found:
            available = ", ".join(self.names()) or "none"
            raise TemplateError(
                f"pod template {ref!r} not found in {str(self.directory)!r} (available templates: {available})"
            )
        if len(found) > 1:
            raise TemplateError(f"pod template {ref!r} is ambiguous: both {' and '.join(found)} exist")
        path = self.directory / found[0]
        real = Path(os.path.realpath(path))
        if not real.is_relative_to(self._real_directory):
            raise TemplateError(
                f"pod template {ref!r}: {str(path)!r} resolves to {str(real)!r}, outside the template directory"
            )
        if not real.is_file():
            raise TemplateError(f"pod template {ref!r}: {str(path)!r} is not a regular file (broken link?)")
        return path, str(real)

    def load(self, ref: str) -> dict[str, Any]:
        """A deep copy of the parsed, validated template ``ref`` names (see :meth:`resolve`).

        The file is re-checked (resolved and stat'ed) at most every ``recheck_seconds`` per
        reference: the scheduler builds pods in bursts, and a ConfigMap update takes the kubelet
        far longer than that to appear anyway.
        """
        return self.load_named(ref)[0]

    def load_named(self, ref: str) -> tuple[dict[str, Any], str]:
        """:meth:`load`, plus the file name ``ref`` resolved to (``heavy_computation.yaml``)."""
        document, name = self._shared(ref)
        return jsonfast.clone(document), name

    def derived(self, ref: str, key: object, make: Callable[[dict[str, Any], str], T]) -> T:
        """``make(copy of the template, file name)``, computed once per version of template ``ref`` and ``key``.

        For what is built the same way from a template for many pods (the pod factory's checked
        base pod): a changed file (a new version, see :meth:`load`) computes it anew.  ``key`` is
        compared by equality; what ``make`` returns is shared, so callers copy before changing it.
        An exception from ``make`` is raised and nothing is kept.
        """
        document, name = self._shared(ref)
        with self._lock:
            entry = self._derived.get((ref, key))
        if entry is not None and entry[0] is document:
            return entry[1]  # type: ignore[return-value]
        value = make(jsonfast.clone(document), name)
        with self._lock:
            if len(self._derived) >= _MAX_DERIVED:
                self._derived.clear()
            self._derived[(ref, key)] = (document, value)
        return value

    def _shared(self, ref: str) -> tuple[dict[str, Any], str]:
        """The cached parsed template (never to be changed) and its file name, re-checked as :meth:`load` says."""
        now = time.monotonic()
        with self._lock:
            recent = self._recent.get(ref)
        if recent is not None and now - recent[0] < self.recheck_seconds:
            return recent[1], recent[2]
        document, name = self._load(ref)
        with self._lock:
            self._recent[ref] = (now, document, name)
        return document, name

    def _load(self, ref: str) -> tuple[dict[str, Any], str]:
        path, real = self._resolve(ref)
        try:
            with open(real, "rb") as handle:
                stat = os.fstat(handle.fileno())
                identity: _Identity = (real, stat.st_mtime_ns, stat.st_size)
                with self._lock:
                    cached = self._cache.get(path.name)
                if cached is not None and cached[0] == identity:
                    return cached[1], path.name
                if stat.st_size > MAX_TEMPLATE_BYTES:
                    raise TemplateError(f"{path}: {stat.st_size} bytes is larger than a pod template may be (1 MiB)")
                raw = handle.read(MAX_TEMPLATE_BYTES + 1)
        except OSError as exc:
            raise TemplateError(f"{path}: cannot read pod template: {exc.strerror or exc}") from exc
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise TemplateError(
                f"{path}: a pod template must be UTF-8 text ({exc.reason} at byte {exc.start})"
            ) from exc
        document = parse_template(text, source=str(path))
        with self._lock:
            self._cache[path.name] = (identity, document)
        return document, path.name

    def load_all(self) -> dict[str, dict[str, Any]]:
        """Every template of the directory by file name, all validated.

        Raises one :class:`TemplateError` naming every invalid template (chained to the first).
        """
        loaded: dict[str, dict[str, Any]] = {}
        errors: list[TemplateError] = []
        for name in self.names():
            try:
                loaded[name] = self.load(name)
            except TemplateError as exc:
                errors.append(exc)
        if errors:
            details = "\n".join(f"  - {error}" for error in errors)
            raise TemplateError(f"{len(errors)} invalid pod template(s) in {str(self.directory)!r}:\n{details}") from (
                errors[0]
            )
        return loaded

    def _file_name(self, ref: str) -> str:
        """The template's file name inside the directory, or TemplateError saying why not."""
        if not isinstance(ref, str) or not ref.strip():
            raise TemplateError(f"a pod template reference must be a non-empty string, got {ref!r}")
        if "\\" in ref or any(ord(char) < 0x20 or ord(char) == 0x7F for char in ref):
            raise TemplateError(f"pod template {ref!r}: backslashes and control characters are not allowed")
        if ".." in ref.split("/"):
            raise TemplateError(f"pod template {ref!r}: '..' is not allowed in a template reference")
        if ref.startswith("/"):
            path = PurePosixPath(ref)
            logical = PurePosixPath(self.logical_dir)
            if not path.is_relative_to(logical) or path == logical:
                raise TemplateError(
                    f"pod template {ref!r}: absolute paths must name a file in {self.logical_dir} (pod_template_dir)"
                )
            if path.parent != logical:
                raise TemplateError(
                    f"pod template {ref!r}: subdirectories of {self.logical_dir} are not allowed "
                    "(templates are the flat keys of one ConfigMap)"
                )
            name = path.name
        elif "/" in ref:
            raise TemplateError(
                f"pod template {ref!r}: give a bare file name or an absolute path in {self.logical_dir}, "
                "not a relative path"
            )
        else:
            name = ref
        if name.startswith("."):
            raise TemplateError(f"pod template {ref!r}: hidden names are not templates")
        return name
