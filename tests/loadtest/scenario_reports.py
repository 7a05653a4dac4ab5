"""The report of one quick scenario run that a load-test suite asserts on: made once per test
class (conftest.py's `report` fixture), or the one ctest's fixture run left (its folder in an
environment variable)."""

import json
import os
import subprocess
import tempfile
import unittest
from dataclasses import dataclass

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, '..', '..'))
BINARY = os.environ.get('STAMPEDE_BIN', os.path.join(ROOT, 'build', 'stampede'))


@dataclass
class ScenarioRun:
    """`loadtest/run SCENARIO --quick ARGS`: where ctest's fixture leaves its report, how long
    a run may take when the test makes its own."""
    scenario: str
    report_env: str
    args: tuple = ()
    timeout: int = 280


@dataclass
class Report:
    out: str     # the report folder
    table: str   # what the run printed (table.txt)
    rows: list   # its summary.json rows


def scenario_report(run):
    """The report of `run`: the fixture's (under ctest, made once for every test of the
    scenario), or one made now (a test run alone)."""
    out = os.environ.get(run.report_env)
    if not out:
        out = tempfile.mkdtemp(prefix='stampede-%s-' % run.scenario)
        done = subprocess.run(
            ['/usr/bin/python3', os.path.join(ROOT, 'loadtest', 'run'), run.scenario, '--quick']
            + list(run.args) + ['--out', out, '--binary', BINARY],
            capture_output=True, text=True, timeout=run.timeout)
        if done.returncode != 0:
            raise AssertionError('loadtest/run failed:\n' + done.stdout + done.stderr)
    with open(os.path.join(out, 'table.txt')) as f:
        table = f.read()
    with open(os.path.join(out, 'summary.json')) as f:
        rows = json.load(f)['scenarios'][run.scenario]
    return Report(out, table, rows)


@pytest.mark.usefixtures('report')
class ReportTest(unittest.TestCase):
    """A suite that asserts on one scenario's report: its RUN (a ScenarioRun) is run, or the
    fixture's report read, once for the class (conftest.py's `report`)."""

    @property
    def stdout(self):
        return self.report.table

    @property
    def out(self):
        return self.report.out

    @property
    def rows(self):
        return self.report.rows
