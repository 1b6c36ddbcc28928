#!/usr/bin/env python3
"""Run a command in a pseudo-terminal and answer its prompts as they appear.

Usage: pty-driver.py SCRIPT.json -- COMMAND [ARGS...]

SCRIPT.json is a list of steps {"expect": REGEX, "send": TEXT}. For each step the driver waits
until REGEX matches the terminal output that arrived since the previous answer (ANSI escapes
removed), then types TEXT. "\\r" is Enter, "\\x7f" backspace, "\\x03" Ctrl-C. After the last step
it reads until the command exits, prints the whole (escape-free) transcript on stdout and exits
with the command's status. A step that does not match within the timeout prints the transcript
on stderr, kills the command and exits 99.
"""
import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import sys
import termios
import time

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[()][A-Za-z0-9]|\x1b[=>]")
TIMEOUT = float(os.environ.get("PTY_STEP_TIMEOUT", "20"))


def main() -> int:
    script_path = sys.argv[1]
    if sys.argv[2] != "--":
        print("usage: pty-driver.py SCRIPT.json -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    command = sys.argv[3:]
    with open(script_path, encoding="utf-8") as f:
        steps = json.load(f)

    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(command[0], command)

    # A wide terminal, so that long questions are not wrapped.
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    raw = b""
    since = 0  # where the output after the previous answer starts

    def text() -> str:
        return ANSI.sub("", raw.decode("utf-8", "replace")).replace("\r", "")

    def read_some(timeout: float) -> bool:
        nonlocal raw
        r, _, _ = select.select([fd], [], [], timeout)
        if not r:
            return True
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            return False
        if not chunk:
            return False
        raw += chunk
        return True

    for step in steps:
        pattern = re.compile(step["expect"])
        deadline = time.monotonic() + TIMEOUT
        while True:
            m = pattern.search(text(), since)
            if m:
                break
            if time.monotonic() > deadline or not read_some(0.1):
                print(f"pty-driver: no match for {step['expect']!r}\n{text()[since:]}", file=sys.stderr)
                print(text(), file=sys.stderr)
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return 99
        since = len(text())
        time.sleep(0.05)  # let the prompt finish drawing before typing
        os.write(fd, step["send"].encode("utf-8"))

    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline and read_some(0.2):
        pass
    _, status = os.waitpid(pid, 0)
    sys.stdout.write(text())
    return os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status >> 8


if __name__ == "__main__":
    sys.exit(main())
