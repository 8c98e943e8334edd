"""Free TCP ports for the test services (stdlib only)."""
import os
import pathlib
import random
import socket
import time


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def stable_free_port(span: int = 1) -> int:
    """A port P with P..P+span-1 free, below the kernel's ephemeral range, so that
    no outgoing connection grabs it while a test has the service stopped."""
    low = 32768
    try:
        low = int(pathlib.Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    hi = max(low - span, 12000)
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    for _ in range(500):
        port = rng.randrange(10000, hi, span)
        if all(port_free(port + i) for i in range(span)):
            return port
    raise RuntimeError(f"no {span} free consecutive port(s) found in 10000-{hi}")
