"""Per-resource diff of two render directories (``render --diff OLD_DIR``).

Renders name one object per file, stably, so comparing directories file by file *is* comparing
resources: a file only in the new render is an added resource, one only in the old is removed,
one in both with different text is changed and gets a unified diff.  Secret values are redacted
in both renders, so the diff can be posted on a pull request.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

PATTERNS = ("*.yaml", "*.json")


@dataclass
class DirDiff:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: int = 0
    patches: dict[str, str] = field(default_factory=dict)  # file -> unified diff (all three kinds)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def summary(self) -> str:
        return (
            f"{len(self.added)} added, {len(self.removed)} removed, {len(self.changed)} changed, "
            f"{self.unchanged} unchanged"
        )

    def render(self) -> str:
        lines = [f"Diff against the previous render: {self.summary()}"]
        lines += [f"+ added:   {name}" for name in self.added]
        lines += [f"- removed: {name}" for name in self.removed]
        lines += [f"~ changed: {name}" for name in self.changed]
        for name in [*self.added, *self.removed, *self.changed]:
            lines += ["", self.patches[name].rstrip("\n")]
        return "\n".join(lines) + "\n"


def _files(directory: Path) -> dict[str, Path]:
    if not directory.is_dir():
        return {}
    return {path.name: path for pattern in PATTERNS for path in directory.glob(pattern)}


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
        old_label = f"old/{name}" if name in before else "/dev/null"
        new_label = f"new/{name}" if name in after else "/dev/null"
        result.patches[name] = "".join(difflib.unified_diff(old_text, new_text, old_label, new_label))
    return result


def _lines(path: Path | None) -> list[str]:
    if path is None:
        return []
    text = path.read_text(encoding="utf-8")
    return text.splitlines(keepends=True) if text.endswith("\n") else (text + "\n").splitlines(keepends=True)
