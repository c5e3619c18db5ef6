"""Style is part of the build: PEP 8 and PEP 257 over all project code."""

import subprocess
import sys

from app.settings import PROJECT_ROOT

SKIPPED_PARTS = {".venv", ".git", "__pycache__", "node_modules", "build"}


def project_python_files():
    """Return every Python file of the project, virtualenvs excluded."""
    files = [path for path in sorted(PROJECT_ROOT.rglob("*.py"))
             if not SKIPPED_PARTS & set(path.relative_to(PROJECT_ROOT).parts)
             and not path.relative_to(PROJECT_ROOT).parts[0].startswith(".")]
    assert len(files) > 10, files
    return [str(path.relative_to(PROJECT_ROOT)) for path in files]


def run_tool(module):
    """Run a lint tool from the project root, where setup.cfg configures it."""
    return subprocess.run(
        [sys.executable, "-m", module, *project_python_files()],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)


def test_pycodestyle_finds_nothing():
    """All project code follows PEP 8 (pycodestyle)."""
    result = run_tool("pycodestyle")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_pydocstyle_finds_nothing():
    """All project code follows PEP 257 (pydocstyle)."""
    result = run_tool("pydocstyle")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_lint_tools_would_catch_a_violation(tmp_path):
    """Both tools do report a file that breaks the rules."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f( ):\n  return 1\n")
    for module in ("pycodestyle", "pydocstyle"):
        result = subprocess.run([sys.executable, "-m", module, str(bad)],
                                cwd=PROJECT_ROOT, capture_output=True,
                                text=True, timeout=60)
        assert result.returncode != 0 and result.stdout, module
