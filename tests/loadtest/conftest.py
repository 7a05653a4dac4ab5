"""What the load-test suites share (pytest fixtures)."""

import pytest

from scenario_reports import scenario_report


@pytest.fixture(scope='class')
def report(request):
    """Sets the class's `report` from its RUN (a ScenarioRun)."""
    request.cls.report = scenario_report(request.cls.RUN)
