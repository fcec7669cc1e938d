"""Check results as JUnit XML, the report format CI systems (GitHub Actions, GitLab CI,
Jenkins) show as tests: one testsuite for the check file, one testcase per check."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from tracekit.checks.evaluate import Result
from tracekit.checks.spec import Check


def document(results: list[Result], suite: str, seconds: float) -> str:
    """A failed check is a testcase with a <failure> whose message holds its figures."""
    root, tests = _suite(suite, len(results), sum(not r.passed for r in results), 0, seconds)
    for r in results:
        case = _case(tests, r.check, suite, r.seconds)
        ET.SubElement(case, "system-out").text = "\n".join(o.text for o in r.outcomes)
        if not r.passed:
            failure = ET.SubElement(case, "failure", type="check failed",
                                    message="; ".join(o.text for o in r.outcomes if not o.passed))
            failure.text = "\n".join(
                [o.text for o in r.outcomes]
                + [f"tracekit flow {o.flow_id}: {o.reason}" for o in r.offenders])
    return _text(root)


def no_data(checks: tuple[Check, ...], suite: str, message: str) -> str:
    """Every check as an <error>: the window held no flow to check."""
    root, tests = _suite(suite, len(checks), 0, len(checks), 0.0)
    for check in checks:
        ET.SubElement(_case(tests, check, suite), "error", type="no data", message=message)
    return _text(root)


def _suite(name: str, tests: int, failures: int, errors: int, seconds: float):
    root = ET.Element("testsuites", name="tracekit check", tests=str(tests),
                      failures=str(failures), errors=str(errors), time=f"{seconds:.3f}")
    suite = ET.SubElement(root, "testsuite", name=name, tests=str(tests), failures=str(failures),
                          errors=str(errors), skipped="0", time=f"{seconds:.3f}")
    return root, suite


def _case(suite: ET.Element, check: Check, classname: str, seconds: float = 0.0) -> ET.Element:
    return ET.SubElement(suite, "testcase", name=check.name, classname=classname,
                         time=f"{seconds:.3f}", file=classname, line=str(check.line))


def _text(root: ET.Element) -> str:
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
