"""Per-resource diff of two render directories (``render --diff OLD_DIR``), update vs replace.

Renders name one object per file, stably, so comparing directories file by file *is* comparing
resources: a file only in the new render is an added resource, one only in the old is removed,
one in both with different text is changed and gets a unified diff.

A changed object is labelled the way ``pulumi preview`` would act on it:

* ``update`` - changed in place;
* ``replace`` - a field in the new file's ``# pulumi-replace-on:`` header changed
  (:mod:`airflow_k8s.infra.render.replacement`); ``delete-first`` when the name is kept (the
  provider cannot create a second object of the same name) or ``deleteBeforeReplace`` is set;
* ``replace BLOCKED`` - the same, on a ``protect``-ed resource: ``pulumi up`` stops with an error
  instead (the DAGs claim, the namespace);
* a removed and an added file that are the same Pulumi resource (same type and name in the
  header) are one ``replace`` with a new name - create-first, then delete;
* a Job carrying ``pulumi.com/replaceUnready`` is listed as ``replaced if unready``, changed or
  not: the next ``up`` replaces it (re-runs it) when the live Job has not completed, which a
  render cannot know (:func:`airflow_k8s.infra.render.replacement.unready_replacement`).

Secret values are redacted in both renders, so the diff can be posted on a pull request.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from airflow_k8s.infra.render.manifests import OPTIONS_HEADER, REPLACE_ON_HEADER
from airflow_k8s.infra.render.outdir import MANIFEST
from airflow_k8s.infra.render.replacement import METADATA, REPLACE_UNREADY, replaces_when_unready, replacing_changes

PATTERNS = ("*.yaml", "*.json")
RESOURCE_HEADER = "# pulumi: "


@dataclass
class DirDiff:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: int = 0
    patches: dict[str, str] = field(default_factory=dict)  # file -> unified diff (all three kinds)
    actions: dict[str, str] = field(default_factory=dict)  # changed or renamed file -> what pulumi up does
    unready_replaced: list[str] = field(default_factory=list)  # files replaced on the next up if not ready

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    @property
    def replaced(self) -> list[str]:
        return sorted(name for name, action in self.actions.items() if action.startswith("replace"))

    def summary(self) -> str:
        return (
            f"{len(self.added)} added, {len(self.removed)} removed, {len(self.changed)} changed "
            f"({len(self.replaced)} replaced), {self.unchanged} unchanged"
        )

    def render(self) -> str:
        lines = [f"Diff against the previous render: {self.summary()}"]
        lines += [f"+ added:   {name}" for name in self.added]
        lines += [f"- removed: {name}" for name in self.removed]
        lines += [f"~ changed: {name} ({self.actions.get(name, 'update')})" for name in self.changed]
        lines += [f"+- {action}: {name}" for name, action in sorted(self.actions.items()) if name not in self.changed]
        lines += [
            f"! replaced if unready: {name} (the next up re-runs it unless the live Job has completed: "
            f"{REPLACE_UNREADY})"
            for name in self.unready_replaced
        ]
        for name in [*self.added, *self.removed, *self.changed]:
            lines += ["", self.patches[name].rstrip("\n")]
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class _Rendered:
    resource: str  # "<pulumi type> <pulumi name>", "" when the file has no header
    replace_on: tuple[str, ...]
    options: tuple[str, ...]
    obj: Any


def _read(path: Path) -> _Rendered:
    text = path.read_text(encoding="utf-8")
    resource = ""
    replace_on: tuple[str, ...] = ()
    options: tuple[str, ...] = ()
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        if line.startswith(RESOURCE_HEADER):
            resource = " ".join(line[len(RESOURCE_HEADER) :].split()[:2])
        elif line.startswith(REPLACE_ON_HEADER):
            replace_on = tuple(p for p in line[len(REPLACE_ON_HEADER) :].split() if p != "-")
        elif line.startswith(OPTIONS_HEADER):
            options = tuple(p for p in line[len(OPTIONS_HEADER) :].split() if p != "-")
    try:
        obj = yaml.safe_load(text) if path.suffix == ".yaml" else None
    except yaml.YAMLError:
        obj = None
    return _Rendered(resource, replace_on, options, obj)


def action(old: _Rendered, new: _Rendered) -> str:
    """What ``pulumi up`` does to an object whose render changed from ``old`` to ``new``."""
    if old.obj is None or new.obj is None:
        return "update"
    fields = replacing_changes(old.obj, new.obj, new.replace_on or old.replace_on)
    if not fields:
        return "update"
    renamed = any(f in METADATA for f in fields)
    order = "create-first" if renamed and "deleteBeforeReplace" not in new.options else "delete-first"
    shown = ", ".join(fields[:4]) + (" ..." if len(fields) > 4 else "")
    if "protect" in new.options:
        return f"replace BLOCKED: protected, pulumi up stops ({shown} changed)"
    return f"replace, {order} ({shown} changed)"


def _files(directory: Path) -> dict[str, Path]:
    if not directory.is_dir():
        return {}
    found = {path.name: path for pattern in PATTERNS for path in directory.glob(pattern)}
    found.pop(MANIFEST, None)
    return found


def diff_dirs(old: Path, new: Path) -> DirDiff:
    """Compare the render in ``old`` with the one in ``new`` (a missing ``old`` is empty)."""
    before, after = _files(old), _files(new)
    result = DirDiff()
    result.added = sorted(set(after) - set(before))
    result.removed = sorted(set(before) - set(after))
    for name in sorted(set(before) | set(after)):
        old_text = _lines(before.get(name))
        new_text = _lines(after.get(name))
        if name in before and name in after:
            if old_text == new_text:
                result.unchanged += 1
                continue
            result.changed.append(name)
            result.actions[name] = action(_read(before[name]), _read(after[name]))
        old_label = f"old/{name}" if name in before else "/dev/null"
        new_label = f"new/{name}" if name in after else "/dev/null"
        result.patches[name] = "".join(difflib.unified_diff(old_text, new_text, old_label, new_label))
    for name in sorted(after):
        rendered = _read(after[name])
        if isinstance(rendered.obj, dict) and replaces_when_unready(rendered.obj):
            result.unready_replaced.append(name)
    removed = {_read(before[name]).resource: name for name in result.removed}
    for name in result.added:
        rendered = _read(after[name])
        if rendered.resource and rendered.resource in removed:
            old_name = removed[rendered.resource]
            result.actions[f"{old_name} -> {name}"] = action(_read(before[old_name]), rendered)
    return result


def _lines(path: Path | None) -> list[str]:
    if path is None:
        return []
    text = path.read_text(encoding="utf-8")
    return text.splitlines(keepends=True) if text.endswith("\n") else (text + "\n").splitlines(keepends=True)
