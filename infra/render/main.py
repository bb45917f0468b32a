"""Offline render: the stack program under mocks -> one YAML file per Kubernetes object.

``python -m airflow_k8s.infra render --stack dev --out build/dev [--diff OLD_DIR] [--check]``
(and ``check-image``: the image preflight's checks against a local image, :mod:`.check_image`)

1. Config as the Pulumi CLI would pass it: ``Pulumi.yaml`` defaults overlaid with
   ``Pulumi.<stack>.yaml``.  Secrets cannot be decrypted without the CLI, and the render must not
   see them anyway: every secret key (``secure:`` values, and required secrets that are unset)
   gets :data:`PLACEHOLDER`.
2. The *same* stack program :func:`airflow_k8s.infra.stack.main` runs under mocks
   (:mod:`airflow_k8s.infra.render.offline`).
3. Every object is written as ``<kind>-<namespace>-<name>.yaml`` (:mod:`airflow_k8s.infra.render.manifests`: floats
   from the mock round trip back to ints, Secret values redacted), plus ``stack-outputs.json``
   with the plain stack outputs.  The files of the previous render in ``--out`` are removed first -
   only those: a directory holding anything else is refused (:mod:`airflow_k8s.infra.render.outdir`).
4. ``--diff OLD_DIR``: per-resource unified diff against an earlier render (:mod:`airflow_k8s.infra.render.diff`).
5. ``--check``: :mod:`airflow_k8s.infra.render.checks` on every file, a secret-leak check on the evaluation and
   checkov (:mod:`airflow_k8s.infra.render.checkov`).  Any failure -> exit code 1.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from airflow_k8s.infra.config.args import PlatformConfig
from airflow_k8s.infra.config.secret_values import OFFLINE_PLACEHOLDER
from airflow_k8s.infra.config.stack_config import EXISTING_FOR_SECRET, Problem, StackConfigError, parse_stack_config
from airflow_k8s.infra.config.stack_file import load_stack_file
from airflow_k8s.infra.config.stack_keys import KEYS_BY_NAME, PROJECT, REQUIRED_SECRETS, SECRET_KEYS, to_raw
from airflow_k8s.infra.render import check_image, checkov, outdir
from airflow_k8s.infra.render.checks import Finding, check_directory
from airflow_k8s.infra.render.diff import diff_dirs
from airflow_k8s.infra.render.manifests import REDACTED, Manifest, manifests
from airflow_k8s.infra.render.offline import Evaluation, evaluate
from airflow_k8s.infra.render.reachability import reachability_problems

_PROVIDER_NAMESPACES = ("kubernetes", "pulumi", "aws", "gcp", "azure-native")
PLACEHOLDER = OFFLINE_PLACEHOLDER  # never checked as a secret value (infra/config/secret_values.py)
OUTPUTS_FILE = "stack-outputs.json"
PROJECT_DIR = Path(__file__).resolve().parents[2]


@dataclass
class StackInputs:
    project: str
    stack: str
    config: dict[str, str]
    secret_keys: list[str]
    notes: list[str] = field(default_factory=list)
    platform: PlatformConfig | None = None  # the validated config (set by load_stack_inputs)


def _full_key(key: object, project: str) -> str:
    key = str(key)  # a YAML key may be a number
    return key if ":" in key else f"{project}:{key}"


def load_stack_inputs(stack: str, project_dir: Path = PROJECT_DIR) -> StackInputs:
    """Config for ``stack`` from Pulumi.yaml defaults and Pulumi.<stack>.yaml (secrets -> placeholder).

    Both files are read strictly (:mod:`airflow_k8s.infra.config.stack_file`); a secret key given
    in plain text and every invalid value are :class:`StackConfigError` naming the stack file.
    """
    project_file = load_stack_file(project_dir / "Pulumi.yaml")
    project = str(project_file.get("name", PROJECT))
    stack_path = project_dir / f"Pulumi.{stack}.yaml"
    if not stack_path.exists():
        raise FileNotFoundError(f"no stack file {stack_path.name} in {project_dir}")
    stack_file = load_stack_file(stack_path)
    inputs = StackInputs(project, stack, {}, [])
    plain_secrets: list[Problem] = []
    declared_secret = set()
    for key, decl in (project_file.get("config") or {}).items():
        full = _full_key(key, project)
        if isinstance(decl, dict):
            if decl.get("secret"):
                declared_secret.add(full)
            if decl.get("default") is not None:
                inputs.config[full] = str(to_raw(decl["default"]))
        elif decl is not None:
            inputs.config[full] = str(to_raw(decl))
    for key, value in (stack_file.get("config") or {}).items():
        full = _full_key(key, project)
        if isinstance(value, dict) and set(value) == {"secure"}:
            inputs.config[full] = PLACEHOLDER
            inputs.secret_keys.append(full)
            inputs.notes.append(f"{full}: encrypted value replaced by a placeholder")
        elif full in declared_secret or (full.startswith(f"{project}:") and full.split(":", 1)[1] in SECRET_KEYS):
            name = full.split(":", 1)[1]
            reason = f"secret given in plain text; remove it and run `pulumi config set --secret {name} <value>`"
            plain_secrets.append(Problem(name, None, reason, secret=True))
        elif full.split(":", 1)[1] in SECRET_KEYS and not full.startswith(f"{project}:"):
            other, name = full.split(":", 1)
            reason = (
                f"given in plain text under project {other!r}, which is not this one ({project!r}): the program "
                f"would ignore it; remove it and run `pulumi config set --secret {name} <value>`"
            )
            plain_secrets.append(Problem(name, None, reason, secret=True))
        else:
            inputs.config[full] = str(to_raw(value))
            owner, _, name = full.partition(":")
            if owner not in (project, *_PROVIDER_NAMESPACES) and name in KEYS_BY_NAME:
                inputs.notes.append(f"{full}: project {owner!r} is not {project!r}: ignored (meant {project}:{name}?)")
    if plain_secrets:
        raise StackConfigError(plain_secrets, source=stack_path.name)
    for name in REQUIRED_SECRETS:
        full = f"{project}:{name}"
        existing = EXISTING_FOR_SECRET.get(name)
        if existing and inputs.config.get(f"{project}:{existing}"):
            continue  # the value lives in the operator's Secret
        if full not in inputs.config:
            inputs.config[full] = PLACEHOLDER
            inputs.secret_keys.append(full)
            inputs.notes.append(
                f"{full}: not set (set it with `pulumi config set --secret {name} ...`); placeholder used"
            )
    inputs.platform = _validate(inputs, stack_path.name)
    return inputs


def _validate(inputs: StackInputs, source: str) -> PlatformConfig:
    """The stack's own keys, validated before the program runs, so errors name the stack file."""
    prefix = f"{inputs.project}:"
    raw = {
        key[len(prefix) :]: value
        for key, value in inputs.config.items()
        if key.startswith(prefix) and key not in inputs.secret_keys
    }
    secrets = {key[len(prefix) :] for key in inputs.secret_keys if key.startswith(prefix)}
    try:
        return parse_stack_config(raw, secrets_set=secrets).platform
    except StackConfigError as exc:
        raise StackConfigError(exc.problems, source=source) from exc


@dataclass
class RenderResult:
    evaluation: Evaluation
    manifests: list[Manifest]
    findings: list[Finding] = field(default_factory=list)
    checkov: checkov.CheckovReport | None = None
    flows_checked: int = 0  # reachability flows evaluated against the NetworkPolicies

    @property
    def ok(self) -> bool:
        return not self.findings and (self.checkov is None or (self.checkov.error is None and not self.checkov.failed))


def write_render(result_manifests: list[Manifest], evaluation: Evaluation, out: Path) -> None:
    """Replace the render in ``out`` (only files an earlier render wrote: :mod:`.outdir`)."""
    outdir.prepare(out)
    written = []
    for manifest in result_manifests:
        (out / manifest.file_name).write_text(manifest.text(), encoding="utf-8")
        written.append(manifest.file_name)
    outputs = {key: (REDACTED if value.secret else value.value) for key, value in sorted(evaluation.outputs.items())}
    (out / OUTPUTS_FILE).write_text(json.dumps(outputs, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    outdir.record(out, [*written, OUTPUTS_FILE])


def leak_findings(result_manifests: list[Manifest], evaluation: Evaluation) -> list[Finding]:
    findings = [
        Finding(m.file_name, "secrets", f"secret value at {path} (only a Secret may hold secrets)")
        for m in result_manifests
        for path in m.leaks
    ]
    findings += [
        Finding(OUTPUTS_FILE, "secrets", f"stack output {key} is secret; outputs must be plain names")
        for key, value in evaluation.outputs.items()
        if value.secret
    ]
    return findings


def render(
    stack: str,
    out: Path,
    *,
    check: bool = False,
    diff: Path | None = None,
    project_dir: Path = PROJECT_DIR,
    stream: TextIO = sys.stdout,
) -> RenderResult:
    if diff is not None and not diff.is_dir():  # else every object would be reported "added"
        raise FileNotFoundError(
            f"--diff {diff}: no earlier render there; make one first, e.g. from the base branch: "
            f"python -m airflow_k8s.infra render --stack {stack} --out {diff}"
        )
    inputs = load_stack_inputs(stack, project_dir)
    evaluation = evaluate(inputs.config, secret_keys=inputs.secret_keys, project=inputs.project, stack=stack)
    rendered = manifests(evaluation)
    snapshot = None
    if diff is not None and out.exists() and diff.resolve() == out.resolve():
        snapshot = Path(tempfile.mkdtemp(prefix="render-old-"))
        for path in diff.glob("*"):
            if path.is_file():
                shutil.copy2(path, snapshot / path.name)
        diff = snapshot
    write_render(rendered, evaluation, out)
    result = RenderResult(evaluation, rendered)
    print(_summary(inputs, result, out), file=stream)
    if diff is not None:
        print(diff_dirs(diff, out).render(), file=stream)
        if snapshot is not None:
            shutil.rmtree(snapshot, ignore_errors=True)
    if check:
        result.findings = leak_findings(rendered, evaluation) + check_directory(out)
        if inputs.platform is not None:
            wrong, result.flows_checked = reachability_problems([m.obj for m in rendered], inputs.platform)
            result.findings += [Finding("networkpolicies", "reachability", problem) for problem in wrong]
        result.checkov = checkov.run_checkov(out)
        print(_check_report(result), file=stream)
    return result


def _summary(inputs: StackInputs, result: RenderResult, out: Path) -> str:
    kinds: dict[str, int] = {}
    for manifest in result.manifests:
        kinds[manifest.kind] = kinds.get(manifest.kind, 0) + 1
    lines = [f"Rendered stack {inputs.project}/{inputs.stack}: {len(result.manifests)} objects -> {out}"]
    lines += [f"  {count:3d} {kind}" for kind, count in sorted(kinds.items())]
    lines += [f"  note: {note}" for note in inputs.notes]
    lines += [f"  warning: {warning}" for warning in result.evaluation.warnings]
    lines.append("Stack outputs:")
    for key, value in sorted(result.evaluation.outputs.items()):
        lines.append(f"  {key} = {'[secret]' if value.secret else json.dumps(value.value)}")
    return "\n".join(lines)


def _check_report(result: RenderResult) -> str:
    lines = ["Checks (schema, PSS restricted, hardening, templates, airflow.cfg, secrets, reachability):"]
    lines += [f"  FAIL {finding}" for finding in result.findings] or ["  ok"]
    if result.flows_checked:
        lines.append(f"reachability: {result.flows_checked} flows checked against the NetworkPolicies")
    report = result.checkov
    assert report is not None
    if not report.available:
        lines.append("checkov: not found (set CHECKOV or install it: make setup)")
    elif report.error:
        lines.append(f"checkov: ERROR {report.error}")
    else:
        lines.append(f"checkov: {report.passed} passed, {len(report.failed)} failed, {len(report.skipped)} skipped")
        lines += [f"  FAIL {failure}" for failure in report.failed]
        lines += [f"  skip {failure.check_id} {failure.resource}: {skip.reason}" for failure, skip in report.skipped]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None, *, environ: dict[str, str] | None = None) -> int:
    import argparse
    import os

    env = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(
        prog="python -m airflow_k8s.infra", description="Offline tools of the airflow-k8s platform."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    cmd = commands.add_parser("render", help="evaluate the stack program offline and write every manifest")
    cmd.add_argument("--stack", default="dev")
    cmd.add_argument("--out", type=Path, required=True)
    cmd.add_argument("--diff", type=Path, metavar="OLD_DIR", help="print a per-resource diff against an older render")
    cmd.add_argument("--check", action="store_true", help="validate every manifest and run checkov")
    cmd.add_argument("--project-dir", type=Path, default=PROJECT_DIR, help=argparse.SUPPRESS)
    check_cmd = commands.add_parser("check", help="run the --check validations on an existing render directory")
    check_cmd.add_argument("directory", type=Path)
    check_image.add_parser(commands, PROJECT_DIR)
    args = parser.parse_args(argv)
    if args.command == "check-image":
        return check_image.run(args)
    require_checkov = env.get("REQUIRE_CHECKOV") == "1"
    try:
        if args.command == "check":
            result = _check_only(args.directory)
        else:
            result = render(args.stack, args.out, check=args.check, diff=args.diff, project_dir=args.project_dir)
    except Exception as exc:  # a failed program is a failed render, reported in one line
        print(f"render failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if result.checkov is not None and not result.checkov.available:
        if require_checkov:
            print("error: checkov is required (REQUIRE_CHECKOV=1) but was not found", file=sys.stderr)
            return 1
        print("warning: checkov not found; its policies were not checked", file=sys.stderr)
    return 0 if result.ok else 1


def _check_only(directory: Path) -> RenderResult:
    result = RenderResult(Evaluation(), [], check_directory(directory), checkov.run_checkov(directory))
    print(_check_report(result))
    return result
