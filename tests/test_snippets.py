"""Every command and snippet of README.md and docs/executor.md runs as written, in a fresh copy of the repository.

A snippet is a fenced code block.  How it is checked follows from its language and an optional marker, an HTML
comment on the line right before the fence: ``<!-- snippet: DIRECTIVE [DIRECTIVE ...] -->``.

Without a marker:

* ``sh`` - run with ``bash -e -o pipefail`` in the copy's root, as in a shell where the project's venv is active
  (its ``bin`` first on ``PATH``: a bare ``python`` is the project's); the copy has every file git tracks or would
  add, and no build output; the venvs ``make setup`` made are linked in, so ``make`` finds them up to date;
* ``python`` - run with the project venv's interpreter, in the copy's root;
* ``ini`` - an airflow.cfg: ``python -m airflow_k8s.executor validate`` with the shipped templates must pass;
* ``json`` - must parse; a task (it has ``dag_id``) must render a pod (``render-pod`` with examples/airflow.cfg);
* ``yaml`` - must parse;
* ``text`` (or no language) - output or a diagram: never run.

Directives (a snippet is skipped only where a directive says so, and the skip says why):

* ``needs TOOL ...`` - run only where every TOOL is available, else skipped naming what is missing.  A TOOL is an
  executable on ``PATH`` (``docker``, ``pulumi``, ``kubectl``, ``helm``...), ``cluster`` (``KUBECONFIG`` names an
  existing file) or ``kube-apiserver`` (the real-API tier's binaries, ``$KAS_ROOT/bin``, default ``/tmp/kas/bin``);
* ``slow`` - only in the opt-in slow tier (``pytest -m slow``), like the soak tests it starts;
* ``ci`` - CI's own command (``make test``): checked to be what ``.ci/run`` runs, never run inside itself;
* ``covered-by PATH`` - run as written by the test PATH, which must exist and read this document;
* ``synopsis`` - usage lines with placeholders: every ``--option`` shown must be one the command's ``--help`` lists;
* ``fresh-venv`` - an ``sh`` snippet run with a fresh virtualenv's ``bin`` first on ``PATH`` (``pip install .``);
* ``python airflow`` - a Python snippet run with the Airflow venv (``.venv-airflow``);
* ``policy`` - after a Python snippet ran, every task it defines must pass the executor's cluster policy
  (:mod:`airflow_k8s.executor.airflow.policy`) under examples/airflow.cfg and the shipped templates;
* ``skip REASON ...`` - not run, for the reason given (required).

Another helper's new README section therefore either runs as written or carries the marker that says why not.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

DOCUMENTS = ("README.md", "docs/executor.md")
LINKED_VENVS = (".venv", ".venv-checkov", ".venv-airflow")
AIRFLOW_PYTHON = ROOT / ".venv-airflow" / "bin" / "python"
DIRECTIVES = ("needs", "slow", "ci", "covered-by", "synopsis", "fresh-venv", "python", "airflow", "policy", "skip")
_FENCE = re.compile(r"^```(\S*)\s*$")
_MARKER = re.compile(r"^<!--\s*snippet:\s*(.*?)\s*-->\s*$")
TIMEOUT = 1200

POLICY_HARNESS = """
import json, sys, types
from pathlib import Path

namespace = {"__name__": "snippet"}
exec(compile(Path(sys.argv[1]).read_text(), sys.argv[2], "exec"), namespace)

from airflow_k8s.executor.airflow import policy
from airflow_k8s.executor.contract.config_loader import load_config
from airflow_k8s.executor.pods.templates import TemplateStore

config = load_config("examples/airflow.cfg", environ={})
check = policy.Checker(config, TemplateStore("pod_templates", logical_dir=config.pod_template_dir),
                       frozenset(), default=True)
found, problems = [], []
for name, value in namespace.items():
    kwargs = getattr(value, "kwargs", None)
    if isinstance(kwargs, dict) and "executor_config" in kwargs:
        task = types.SimpleNamespace(task_id=name, dag_id="snippet", executor_config=kwargs["executor_config"])
        found.append(name)
        problem = policy.task_problem(task, check)
        if problem:
            problems.append(f"{name}: {problem}")
print(json.dumps({"tasks": found, "problems": problems}))
"""


@dataclasses.dataclass(frozen=True)
class Snippet:
    document: str
    line: int  # of the opening fence, 1-based
    language: str
    text: str
    directives: tuple[str, ...]

    @property
    def id(self) -> str:
        return f"{self.document}:{self.line}:{self.language or 'text'}"

    def has(self, directive: str) -> bool:
        return directive in self.directives

    def arguments(self, directive: str) -> list[str]:
        """The words after ``directive`` up to the next directive."""
        if directive not in self.directives:
            return []
        words = list(self.directives[self.directives.index(directive) + 1 :])
        end = next((i for i, word in enumerate(words) if word in DIRECTIVES and directive != "skip"), len(words))
        return words[:end]


def snippets(document: str) -> list[Snippet]:
    """The fenced blocks of ``document`` with their markers (an unknown directive is an error)."""
    lines = (ROOT / document).read_text(encoding="utf-8").splitlines()
    found, index = [], 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
        marker = _MARKER.match(lines[index - 1]) if index else None
        directives = tuple(marker.group(1).split()) if marker else ()
        unknown = [word for word in directives if word not in DIRECTIVES and not _argument_position(directives, word)]
        assert not unknown, f"{document}:{index + 1}: unknown snippet directive(s) {unknown}; known: {DIRECTIVES}"
        text = "\n".join(lines[index + 1 : end]) + "\n"
        found.append(Snippet(document, index + 1, opening.group(1), text, directives))
        index = end + 1
    return found


def _argument_position(directives: tuple[str, ...], word: str) -> bool:
    """Whether ``word`` is an argument of ``needs``, ``covered-by`` or ``skip`` in ``directives``."""
    position = directives.index(word)
    before = [d for d in directives[:position] if d in ("needs", "covered-by", "skip")]
    return bool(before)


ALL = [snippet for document in DOCUMENTS for snippet in snippets(document)]


def _param(snippet: Snippet) -> object:
    marks = [pytest.mark.slow] if snippet.has("slow") else []
    return pytest.param(snippet, id=snippet.id, marks=marks)


def missing_tools(tools: list[str]) -> list[str]:
    missing = []
    for tool in tools:
        if tool == "cluster":
            available = bool(os.environ.get("KUBECONFIG")) and Path(os.environ["KUBECONFIG"]).is_file()
        elif tool == "kube-apiserver":
            available = (Path(os.environ.get("KAS_ROOT", "/tmp/kas")) / "bin" / "kube-apiserver").is_file()
        else:
            available = shutil.which(tool) is not None
        if not available:
            missing.append(tool)
    return missing


def clean_env(**extra: str) -> dict[str, str]:
    drop = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTEST_CURRENT_TEST")
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("AIRFLOW")}
    env.update(extra)
    return env


def run(argv: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        argv, cwd=cwd, env=env or clean_env(), capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert done.returncode == 0, (
        f"{shlex.join(argv)[:300]} exited {done.returncode}:\n{done.stdout[-3000:]}\n" + (done.stderr[-5000:])
    )
    return done.stdout


@pytest.fixture(scope="module")
def fresh_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every file git tracks or would add (no build output), mtimes kept, the made venvs linked in."""
    stale = subprocess.run(["make", "-q", *(f"{venv}/.installed" for venv in LINKED_VENVS)], cwd=ROOT, check=False)
    assert stale.returncode == 0, "the venvs are out of date with pyproject.toml/constraints: run `make setup` first"
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True,
        check=True,
    ).stdout.decode()  # fmt: skip
    copy = tmp_path_factory.mktemp("clone") / "airflow-k8s-platform"
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if not source.exists() and not source.is_symlink():  # deleted in the working tree, not yet in git
            continue
        target = copy / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)
    for venv in LINKED_VENVS:
        if (ROOT / venv).is_dir():
            (copy / venv).symlink_to(ROOT / venv)
    return copy


def test_every_block_of_the_documents_is_found_and_each_marker_is_well_formed():
    assert {s.document for s in ALL} == set(DOCUMENTS)
    assert all(s.language in ("", "sh", "python", "ini", "json", "yaml", "text") for s in ALL), [s.id for s in ALL]
    for snippet in ALL:
        if snippet.has("skip"):
            assert snippet.arguments("skip"), f"{snippet.id}: skip needs a reason"
        if snippet.has("needs"):
            assert snippet.arguments("needs"), f"{snippet.id}: needs names the tools"


@pytest.mark.parametrize("snippet", [_param(s) for s in ALL])
def test_the_snippet_runs_as_written(snippet: Snippet, fresh_copy: Path, tmp_path: Path) -> None:
    if snippet.has("skip"):
        pytest.skip(f"{snippet.id}: {' '.join(snippet.arguments('skip'))}")
    missing = missing_tools(snippet.arguments("needs"))
    if missing:
        pytest.skip(f"{snippet.id} needs {', '.join(missing)}, which this machine lacks")
    if snippet.language in ("", "text"):
        return  # output or a diagram
    if snippet.has("ci"):
        check_ci_command(snippet)
    elif snippet.has("covered-by"):
        (path,) = snippet.arguments("covered-by")
        assert (ROOT / path).is_file() and Path(snippet.document).name in (ROOT / path).read_text(), path
    elif snippet.has("synopsis"):
        check_synopsis(snippet, fresh_copy)
    elif snippet.language == "sh":
        run_shell(snippet, fresh_copy, tmp_path)
    elif snippet.language == "python":
        run_python(snippet, fresh_copy, tmp_path)
    elif snippet.language == "ini":
        config = tmp_path / "airflow.cfg"
        config.write_text(snippet.text)
        python = str(fresh_copy / ".venv" / "bin" / "python")
        run([python, "-m", "airflow_k8s.executor", "validate", "--config", str(config), "--templates", "pod_templates"],
            cwd=fresh_copy)  # fmt: skip
    elif snippet.language == "json":
        check_json(snippet, fresh_copy, tmp_path)
    elif snippet.language == "yaml":
        yaml.safe_load(snippet.text)


def check_ci_command(snippet: Snippet) -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    for line in _commands(snippet.text):
        assert line in ci, f"{snippet.id}: {line!r} is not what .ci/run runs"


def check_synopsis(snippet: Snippet, copy: Path) -> None:
    for line in _commands(snippet.text):
        command: list[str] = []
        for word in shlex.split(line):
            if word.startswith(("[", "--")):
                break
            command.append(word)
        if command[0] == "python":  # the project's (its venv active)
            command[0] = str(copy / ".venv" / "bin" / "python")
        usage = run([*command, "--help"], cwd=copy)
        for option in re.findall(r"(--[a-z][a-z-]*)", line):
            assert option in usage, f"{snippet.id}: {option} is not an option of {' '.join(command)}:\n{usage}"


def _commands(text: str) -> list[str]:
    """The commands of a shell block, comments removed (a ``#`` outside quotes starts one)."""
    out = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip() if " #" in raw else raw.strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out


def run_shell(snippet: Snippet, copy: Path, tmp_path: Path) -> None:
    env = clean_env(PATH=f"{copy / '.venv' / 'bin'}:{os.environ.get('PATH', '')}", VIRTUAL_ENV=str(copy / ".venv"))
    if snippet.has("fresh-venv"):
        venv = tmp_path / "venv"
        run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path)
        env = clean_env(PATH=f"{venv / 'bin'}:{os.environ.get('PATH', '')}", VIRTUAL_ENV=str(venv))
    script = tmp_path / "snippet.sh"
    script.write_text(snippet.text)
    output = run(["bash", "-e", "-o", "pipefail", str(script)], cwd=copy, env=env)
    if snippet.has("fresh-venv") and "pod_templates" in snippet.text:
        printed = Path(output.strip().splitlines()[-1])
        assert sorted(p.name for p in printed.glob("*.yaml")) == sorted(p.name for p in (ROOT / "pod_templates").glob(
            "*.yaml"))  # fmt: skip


def run_python(snippet: Snippet, copy: Path, tmp_path: Path) -> None:
    source = tmp_path / "snippet.py"
    source.write_text(snippet.text)
    if snippet.has("airflow"):
        if not AIRFLOW_PYTHON.exists():
            pytest.skip(f"{snippet.id} needs the Airflow venv (.venv-airflow: make setup)")
        python = str(copy / ".venv-airflow" / "bin" / "python")
        env = clean_env(AIRFLOW_HOME=str(tmp_path / "airflow-home"), AIRFLOW__CORE__LOAD_EXAMPLES="False")
    else:
        python, env = str(copy / ".venv" / "bin" / "python"), clean_env()
    if not snippet.has("policy"):
        run([python, str(source)], cwd=copy, env=env)
        return
    harness = tmp_path / "harness.py"
    harness.write_text(POLICY_HARNESS)
    result = json.loads(run([python, str(harness), str(source), snippet.id], cwd=copy, env=env).splitlines()[-1])
    assert result["tasks"], f"{snippet.id}: defines no task with an executor_config"
    assert result["problems"] == [], f"{snippet.id}: the executor would refuse {result['problems']}"


def check_json(snippet: Snippet, copy: Path, tmp_path: Path) -> None:
    data = json.loads(snippet.text)
    if isinstance(data, dict) and "dag_id" in data:
        task = tmp_path / "task.json"
        task.write_text(snippet.text)
        python = str(copy / ".venv" / "bin" / "python")
        run([python, "-m", "airflow_k8s.executor", "render-pod", "--config", "examples/airflow.cfg", "--templates",
             "pod_templates", "--task", str(task)], cwd=copy)  # fmt: skip
