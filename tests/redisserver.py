"""A real redis-server for tests: free port, private directory, optional password, restartable."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

REDIS_SERVER = shutil.which("redis-server")


def free_port() -> int:
    """Ask the kernel for a free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One redis-server process on 127.0.0.1 that can be stopped and restarted on the same port.

    Data survives a graceful stop: the server saves an RDB file into its directory on
    SIGTERM and loads it again on start, so "outage then recovery" tests can count entries
    written before and after the outage. ``kill()`` stops it hard (nothing saved).
    """

    def __init__(
        self,
        directory: Path,
        *,
        password: str | None = None,
        port: int | None = None,
        extra_args: list[str] | None = None,
    ) -> None:
        if REDIS_SERVER is None:
            raise RuntimeError("redis-server is not on PATH (Debian: apt-get install redis-server)")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.password = password
        self.port = port or free_port()
        self.extra_args = list(extra_args or [])
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The URL a client uses, with the password if the server has one."""
        return self.url_with(self.password)

    def url_with(self, password: str | None) -> str:
        """The URL with ``password`` (possibly a wrong one) as credentials."""
        auth = f":{password}@" if password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start the server and return once it answers PING."""
        if self.running:
            return self
        args = [
            str(REDIS_SERVER),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory),
            "--dbfilename",
            "dump.rdb",
            # A save point makes SIGTERM write the RDB file; 3600 s keeps it from saving mid-test.
            "--save",
            "3600 1",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--protected-mode",
            "no",
            "--logfile",
            str(self.directory / "redis.log"),
        ]
        if self.password:
            args += ["--requirepass", self.password]
        args += self.extra_args
        # The password is visible in our own child's argv only; tests use throwaway passwords.
        self.proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"redis-server exited with {self.proc.returncode}: {self.log_tail()}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    reply = sock.recv(64)
                # +PONG, or -NOAUTH when a password is set: either way it serves commands.
                if reply.startswith((b"+PONG", b"-NOAUTH")):
                    return
            except OSError:
                pass
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server did not answer on port {self.port}: {self.log_tail()}")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop gracefully (SIGTERM: the data is saved) and wait for the process to exit."""
        self._end(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """Stop hard (SIGKILL): nothing is saved."""
        self._end(signal.SIGKILL, 10.0)

    def _end(self, sig: int, timeout: float) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def restart(self) -> RedisServer:
        """Stop gracefully and start again on the same port with the same data."""
        self.stop()
        return self.start()

    def client(self, **kwargs: Any) -> Any:
        """A redis-py client with the right password, decoding replies to str."""
        import redis

        kwargs.setdefault("decode_responses", True)
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password, **kwargs)

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = (self.directory / "redis.log").read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()

    def __del__(self) -> None:
        # Never leave an orphan server behind if a test forgot to stop it.
        proc = getattr(self, "proc", None)
        if proc is not None and proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
