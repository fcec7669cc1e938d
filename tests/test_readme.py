"""The README's first commands are the ones CI and users run."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    commands = [line.strip() for line in readme.splitlines()[:10] if line.startswith("    ")]
    assert len(commands) == 2, "the README starts with two commands: main job, tests"
    main_job, tests = commands
    assert "tracekit collect" in main_job
    assert tests in (ROOT / ".ci" / "run").read_text()
