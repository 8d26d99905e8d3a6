"""The set-up files agree with each other."""
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ]", req.strip(), maxsplit=1)[0].lower()


def _pyproject_requirements() -> dict[str, str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    reqs = data["project"]["dependencies"] + data["project"]["optional-dependencies"]["dev"]
    return {_name(r): r.replace(" ", "") for r in reqs}


def _environment_requirements() -> dict[str, str]:
    lines = (ROOT / "environment.yml").read_text().splitlines()
    pip_items = [l.strip()[2:].strip() for l in lines if l.startswith("      - ")]
    return {_name(r): r.replace(" ", "") for r in pip_items if not r.startswith("-e")}


def test_environment_yml_lists_the_same_packages_as_pyproject():
    py = _pyproject_requirements()
    env = _environment_requirements()
    assert set(py) == set(env)
    for name, spec in py.items():
        if name == "torch":
            # environment.yml pins the exact build the Makefile installs; it must satisfy pyproject's range.
            assert env[name] == "torch==2.13.0"
            assert spec == "torch>=2.4"
        else:
            assert env[name] == spec, name


def test_makefile_pins_the_same_torch_as_environment_yml():
    assert "TORCH_SPEC ?= torch==2.13.0" in (ROOT / "Makefile").read_text()


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme
    assert ci.strip().splitlines()[-1] == "make test"


def test_console_script_and_module_entry_point_agree():
    out = subprocess.run([sys.executable, "-m", "tagvis_lib", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    assert "synth" in out.stdout and "data-check" in out.stdout


def test_the_package_root_shows_the_papers_parts():
    """At most 8 modules at the root; the paper's parts, the command and the notebook support as subpackages."""
    pkg = ROOT / "tagvis_lib"
    modules = sorted(p.name for p in pkg.glob("*.py") if p.name not in ("__init__.py", "__main__.py"))
    assert len(modules) <= 8, modules
    subpackages = sorted(p.name for p in pkg.iterdir() if (p / "__init__.py").exists())
    assert subpackages == ["cli", "data", "inference", "losses", "metrics", "model", "notebook", "training", "utils"]
