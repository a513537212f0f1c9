"""Hosts made of Linux network namespaces, joined by a bridge in a namespace of their own.

Each host gets one interface (eth0) on the bridge and an address in a private /24 that exists
only inside these namespaces; the machine's own network is never touched. The test process
stays in its own namespace and reaches a host by creating a socket inside that host's namespace
(setns on the calling thread), or through unix sockets, which no namespace separates.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/var/run/netns")
_libc = ctypes.CDLL(None, use_errno=True)


def unavailable() -> str | None:
    """Why hosts cannot be made here, or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add)"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is missing"
    probe = f"probe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"ip netns add failed: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


class Hosts:
    """Namespaces named <prefix>-<host>, on the subnet 10.<a>.<b>.0/24."""

    def __init__(self, prefix: str, subnet: str) -> None:
        self.prefix, self.subnet = prefix, subnet  # subnet: "10.213.7" (the first three octets)
        self.switch = f"{prefix}-switch"
        self.addresses: dict[str, str] = {}
        self.procs: list[tuple[subprocess.Popen, signal.Signals]] = []
        _ip("netns", "add", self.switch)
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")

    def namespace(self, host: str) -> str:
        return f"{self.prefix}-{host}"

    def add(self, host: str) -> str:
        """A new host on the bridge; returns its address."""
        ns, port = self.namespace(host), f"p{len(self.addresses)}"
        address = f"{self.subnet}.{len(self.addresses) + 2}"
        _ip("netns", "add", ns)
        self.addresses[host] = address
        _ip("-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", port, "netns", self.switch)
        _ip("-n", self.switch, "link", "set", port, "master", "br0", "up")
        _ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        return address

    def run(self, host: str, argv: list[str], log: Path, env: dict[str, str], cwd: Path | None = None,
            user: str | None = None, stop: signal.Signals = signal.SIGTERM) -> subprocess.Popen:  # fmt: skip
        """Start a process on the host (as `user` when given); remove() stops it with `stop`."""
        as_user = ["runuser", "-u", user, "--"] if user else []
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.namespace(host), *as_user, *argv],
            cwd=cwd,
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append((proc, stop))
        return proc

    def cut(self, host: str) -> None:
        """Take the host's link down: its packets go nowhere, nobody is told."""
        _ip("-n", self.namespace(host), "link", "set", "eth0", "down")

    @contextmanager
    def inside(self, host: str) -> Iterator[None]:
        """Run the block with this thread in the host's network namespace."""
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(NETNS_DIR / self.namespace(host), os.O_RDONLY)
        try:
            if _libc.setns(target, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns into the host's namespace failed")
            yield
        finally:
            _libc.setns(own, CLONE_NEWNET)
            os.close(own)
            os.close(target)

    def connect(self, host: str, address: str, port: int, timeout: float) -> socket.socket:
        """A TCP connection made from inside `host` (the socket stays in that namespace)."""
        with self.inside(host):
            return socket.create_connection((address, port), timeout=timeout)

    def remove(self) -> None:
        """Stop every process started here, then delete the namespaces (and with them the links)."""
        for proc, stop in reversed(self.procs):  # clients first, the data host's servers last
            if proc.poll() is None:
                os.killpg(proc.pid, stop)
        deadline = time.monotonic() + 10
        for proc, _ in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for host in self.addresses:
            subprocess.run(["ip", "netns", "del", self.namespace(host)], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.switch], capture_output=True)
