"""scripts/demo.sh runs the API and the push worker side by side (scripts/lib.sh,
`run_api_and_worker`): stopping the script stops both, each once and gently.

Before, the script ran the worker in the background and `gridwork serve` in the foreground
with a trap: SIGTERM to the script (`kill`, sudo passing it on) waited for the API, which never
heard it, so both kept running; a Ctrl-C reached the worker from the terminal and then again
from the trap, and a second signal stops the worker at once, mid-send.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# A stand-in for `gridwork`: notes its pid and every signal it gets, exits on SIGTERM
# (`serve --fail` exits at once, as gunicorn does when the port is taken).
FAKE = """\
import os, signal, sys, time
role = "api" if sys.argv[1] == "serve" else "worker"
notes = os.path.join(os.environ["FAKE_NOTES"], role)
def note(text):
    with open(notes, "a") as f:
        f.write(text + "\\n")
def got(signum, _frame):
    note(signal.Signals(signum).name)
    if signum == signal.SIGTERM:
        sys.exit(0)
for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(s, got)
note(f"pid {os.getpid()}")
if "--fail" in sys.argv:  # after gunicorn's retries, the worker long started
    while not os.path.exists(os.path.join(os.environ["FAKE_NOTES"], "worker")):
        time.sleep(0.05)
    time.sleep(0.3)
    sys.exit(3)
while True:
    time.sleep(0.05)
"""


def _terminal_signals() -> None:
    """In the child before it runs: SIGHUP and SIGINT as a terminal's job has them."""
    for signum in (signal.SIGHUP, signal.SIGINT):
        signal.signal(signum, signal.SIG_DFL)


@pytest.fixture()
def script(tmp_path):
    fake = tmp_path / "gridwork"
    fake.write_text(f"#!{sys.executable}\n{FAKE}")
    fake.chmod(0o755)
    notes = tmp_path / "notes"
    notes.mkdir()

    def start(*serve_args: str) -> subprocess.Popen:
        log = tmp_path / "worker.log"
        command = f'source scripts/lib.sh; run_api_and_worker "{log}" {" ".join(serve_args)}'
        env = {**os.environ, "GRIDWORK_BIN": str(fake), "FAKE_NOTES": str(notes)}
        # A session of its own, as a terminal's foreground job: its group is what Ctrl-C hits.
        # With the terminal's dispositions: a suite started under `nohup` (or in the background
        # of a script) ignores SIGHUP (SIGINT), a shell cannot trap a signal ignored on entry,
        # and the script, deaf to it, outlived the test (seen in CI runs started so).
        process = subprocess.Popen(
            ["bash", "-c", command],
            cwd=ROOT,
            env=env,
            start_new_session=True,
            preexec_fn=_terminal_signals,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return process

    def notes_of(role: str) -> list[str]:
        path = notes / role
        return path.read_text().split("\n")[:-1] if path.exists() else []

    def wait_started(process) -> None:
        deadline = time.monotonic() + 20
        while not (notes_of("api") and notes_of("worker")):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.3)  # the script is waiting on them

    def alive(role: str) -> bool:
        pid = int(notes_of(role)[0].split()[1])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    started: list[subprocess.Popen] = []

    def tracked(*args):
        started.append(process := start(*args))
        return process

    tracked.notes_of, tracked.wait_started, tracked.alive = notes_of, wait_started, alive
    yield tracked
    for process in started:  # never leave a process behind, whatever the test found
        for role in ("api", "worker"):
            if notes_of(role) and alive(role):
                os.kill(int(notes_of(role)[0].split()[1]), signal.SIGKILL)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_sigterm_to_the_script_stops_the_api_and_the_worker(script):
    process = script("--port", "8000")
    script.wait_started(process)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0  # the API's status
    assert script.notes_of("api")[1:] == ["SIGTERM"]
    assert script.notes_of("worker")[1:] == ["SIGTERM"]
    assert not script.alive("api") and not script.alive("worker")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGHUP])
def test_ctrl_c_or_a_closed_terminal_stops_each_once_gently(script, signum):
    """The terminal signals the whole foreground group: the children, in groups of their own,
    hear only the script's one SIGTERM (the worker's second signal stops it mid-send)."""
    process = script("--port", "8000")
    script.wait_started(process)
    os.killpg(process.pid, signum)
    process.wait(timeout=10)
    assert script.notes_of("api")[1:] == ["SIGTERM"]
    assert script.notes_of("worker")[1:] == ["SIGTERM"]


def test_an_api_that_cannot_start_stops_the_worker_and_fails_the_script(script):
    """A second run while the first holds the port: gunicorn gives up; no worker is left."""
    process = script("--fail")
    assert process.wait(timeout=10) == 3
    assert script.notes_of("worker")[1:] == ["SIGTERM"]
    assert not script.alive("worker")


def _lib(command: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", f"source scripts/lib.sh; {command}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_a_second_demo_on_a_taken_port_stops_before_it_starts_anything():
    """A second `scripts/demo.sh` while the first runs printed the banner and the demo URLs
    (the first one's), started a second push worker, and only then met gunicorn's five
    "Connection in use" retries. It now says so at once, naming the port and PORT=."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _lib(f"require_free_port 127.0.0.1 {port}; echo went-on")
    assert done.returncode != 0
    assert "went-on" not in done.stdout
    assert str(port) in done.stderr and "PORT=" in done.stderr
    free = _lib(f"require_free_port 127.0.0.1 {port}; echo went-on")
    assert free.returncode == 0 and "went-on" in free.stdout
