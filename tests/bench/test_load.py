"""The load test's verdict: every request that went wrong is an error, however locust saw it."""

from __future__ import annotations

from pathlib import Path

from bench.load import count_errors

# What locust 2.x writes (--csv PREFIX) for a run in which every sync got a 200 the task could
# not read: the requests are in neither count, the exceptions file holds them.
STATS = """Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,\
Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,\
90%,95%,98%,99%,99.9%,99.99%,100%
,Aggregated,0,0,0,0.0,0.0,0.0,0.0,0.0,0.0,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A
"""
EXCEPTIONS = """Count,Message,Traceback,Nodes
20,'results',"  File ""locust/user/task.py"", line 363, in run
KeyError: 'results'
",local
3,Expecting value: line 1 column 1 (char 0),"  File ""bench/locustfile.py""
",local
"""


def write(tmp_path: Path, stats: str, exceptions: str | None) -> Path:
    (tmp_path / "locust_stats.csv").write_text(stats, encoding="utf-8")
    if exceptions is not None:
        (tmp_path / "locust_exceptions.csv").write_text(exceptions, encoding="utf-8")
    return tmp_path / "locust_stats.csv"


def test_a_task_that_raised_is_an_error(tmp_path):
    assert count_errors(write(tmp_path, STATS, EXCEPTIONS)) == 23


def test_failed_requests_and_raised_tasks_add_up(tmp_path):
    stats = STATS.replace(",Aggregated,0,0,", ",Aggregated,100,4,")
    assert count_errors(write(tmp_path, stats, EXCEPTIONS)) == 27


def test_a_clean_run_has_no_errors(tmp_path):
    empty = "Count,Message,Traceback,Nodes\n"
    assert count_errors(write(tmp_path, STATS, empty)) == 0
    alone = tmp_path / "no_exceptions_file"
    alone.mkdir()
    assert count_errors(write(alone, STATS, None)) == 0
