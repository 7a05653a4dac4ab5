"""The typed result rows the scenarios return: one dataclass per kind of row. A row becomes a
dict only where it leaves Python (the tables, which look its columns up by field name, and
summary.json)."""

import dataclasses


@dataclasses.dataclass
class Row:
    """What every row has: the scenario that made it and the mode it ran in."""
    scenario: str
    mode: str

    def as_dict(self):
        """Shallow: the generators' results stay objects until the JSON writer turns them
        into data."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def check_columns(row_type, columns):
    """Fails at once, naming it, on a column that names no field of `row_type`: a typo would
    otherwise print an empty column."""
    names = {f.name for f in dataclasses.fields(row_type)}
    missing = [key for _, key, _ in columns if key not in names]
    if missing:
        raise KeyError('%s has no field %s' % (row_type.__name__, ', '.join(missing)))
    return columns


@dataclasses.dataclass
class BaselineRow(Row):
    """One mode at a steady load, no spike. Latencies in µs."""
    path: str
    connections: int
    rps: float
    goodput: float
    ok_p50_us: object
    ok_p99_us: object
    ok_max_us: object
    rejected_503: int
    timeouts_errors: int
    threads_peak: object
    rss_peak: object
    wrk: object


@dataclasses.dataclass
class DisconnectRow(Row):
    """One mode while clients give up and leave: what it did for them afterwards."""
    path: str
    abandoned: int
    answered: int
    disconnects: float
    cancelled: float
    wasted_s: float
    threads_peak: object
    tasks_peak: object
    final_tasks: object


@dataclasses.dataclass
class FanoutRow(Row):
    """One mode's fan-out, in parallel or in turn. Latencies in µs."""
    path: str
    parallel: int
    ok_p50_us: object
    ok_p99_us: object
    goodput: float
    threads_peak: object
    wrk: object
