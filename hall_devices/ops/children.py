"""Child processes that cannot outlive the process that started them.

`hall-devices up` stops its children in order on Ctrl-C; this is the net under that: if `up`
itself is killed (SIGKILL, an out-of-memory kill, a closed pipe), Linux sends each child SIGTERM,
so no coordinator or agent is left running against a broker that is gone. util-linux's `setpriv`
(Essential on Debian) sets the parent-death signal and then execs the command, so the child keeps
its pid and no `preexec_fn` runs in a forked, threaded parent.

Such children are also started in a session of their own (``Popen(start_new_session=True)``): a
terminal's Ctrl-C signals its whole foreground process group, and the broker must not quit at the
same moment as the agents that still want to tell it they are going offline.
"""

from __future__ import annotations

import shutil
import signal
import subprocess


def dying_with_parent(argv: list[str]) -> list[str]:
    """``argv`` run so that it gets SIGTERM when the thread that started it exits."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", *argv] if setpriv else argv


def stop_child(child: subprocess.Popen[bytes], within_s: float) -> None:
    """Stop a role's process as systemd would: SIGTERM, then SIGKILL if it has not exited within
    ``within_s`` seconds; returns once it has exited (an exited child is left as it is)."""
    if child.poll() is not None:
        return
    child.send_signal(signal.SIGTERM)
    try:
        child.wait(within_s)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
