"""How prefork's workers share the clients: the figures behind docs/prefork.md.

    python3 -m docs.prefork_spread [--workers 4] [--clients 400]

Two questions, each answered with real sockets on loopback:

1. The spread. Workers wait for clients in one of four ways: one listener inherited
   by all, waited on in blocking accept(), in epoll, or in epoll with EPOLLEXCLUSIVE;
   or a listener each, bound with SO_REUSEPORT, waited on in epoll. Clients connect
   one after another (each is served, then the next comes), and in bursts of
   --workers at once. Per design: how many clients each worker took, and how many
   times a worker woke for nothing (its accept() found the queue empty).
2. A worker's queue when it exits, under SO_REUSEPORT: clients queued on one
   worker's listener, not yet accepted, when that listener closes. With
   net.ipv4.tcp_migrate_req = 0 (the default) the kernel resets them; with 1 it
   moves them to another listener of the group (Linux 5.14). To see both without
   changing this machine's setting, run it again in a network namespace of its own:

    unshare -n sh -c 'ip link set lo up; sysctl -qw net.ipv4.tcp_migrate_req=1;
                      python3 -m docs.prefork_spread'
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import select
import signal
import socket
import time
from collections.abc import Callable

Design = Callable[[socket.socket | None, int], None]  # (inherited listener or None, result pipe)
QUEUED = 8  # clients left queued on the listener that closes, in part 2


def new_listener(reuse_port: bool = False, port: int = 0) -> socket.socket:
    return socket.create_server(("127.0.0.1", port), backlog=128, reuse_port=reuse_port)


def port_holder() -> socket.socket:
    """Bound with SO_REUSEPORT, never listening: it holds a port that only the workers'
    listeners take clients on (a listening holder would take its share, unserved)."""
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    holder.bind(("127.0.0.1", 0))
    return holder


def report(pipe: int, taken: int, wasted: int) -> None:
    """Tell the parent what this worker did. Its sleeps (voluntary context switches)
    count every wakeup, also those the kernel ends inside epoll_wait(): woken with the
    herd, a worker whose listener is no longer ready goes back to sleep unseen."""
    sleeps = resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw
    os.write(pipe, f"{taken} {wasted} {sleeps}\n".encode())


def serve_one(listener: socket.socket) -> bool:
    """Accept one client and answer it; False when the queue was empty (a wasted wakeup)."""
    try:
        client, _ = listener.accept()
    except BlockingIOError:
        return False
    with client:
        client.sendall(client.recv(1))
    return True


def blocking_accept(inherited: socket.socket | None, pipe: int) -> None:
    assert inherited is not None
    taken = 0
    stop = install_stop()
    with contextlib.suppress(InterruptedError):
        while not stop:
            taken += serve_one(inherited)  # the kernel wakes one accept() waiter: no herd
    report(pipe, taken, 0)


def epoll_loop(listener: socket.socket, pipe: int, flags: int) -> None:
    listener.setblocking(False)
    taken = wasted = 0
    stop = install_stop()
    with select.epoll() as epoll:
        epoll.register(listener.fileno(), select.EPOLLIN | flags)
        with contextlib.suppress(InterruptedError):
            while not stop:
                for _ in epoll.poll():
                    if serve_one(listener):
                        taken += 1
                    else:
                        wasted += 1
    report(pipe, taken, wasted)


def shared_epoll(inherited: socket.socket | None, pipe: int) -> None:
    assert inherited is not None
    epoll_loop(inherited, pipe, 0)


def shared_epoll_exclusive(inherited: socket.socket | None, pipe: int) -> None:
    assert inherited is not None
    epoll_loop(inherited, pipe, select.EPOLLEXCLUSIVE)


def reuseport_epoll(port_holder: socket.socket | None, pipe: int) -> None:
    assert port_holder is not None
    epoll_loop(new_listener(reuse_port=True, port=port_holder.getsockname()[1]), pipe, 0)


def install_stop() -> list[bool]:
    """A list that turns true at SIGTERM; the handler raises to end a blocking wait."""
    stop: list[bool] = []

    def handler(signum: int, frame: object) -> None:
        stop.append(True)
        raise InterruptedError

    signal.signal(signal.SIGTERM, handler)
    return stop


def run_design(design: Design, workers: int, clients: int, burst: int) -> list[tuple[int, ...]]:
    """Fork the workers, send the clients, stop the workers; (taken, wasted, sleeps) per worker."""
    listener = port_holder() if design is reuseport_epoll else new_listener()
    reader, writer = os.pipe()
    pids = []
    for _ in range(workers):
        if (pid := os.fork()) == 0:
            try:
                design(listener, writer)
            finally:
                os._exit(0)
        pids.append(pid)
    address = listener.getsockname()
    if design is reuseport_epoll:
        # The holder never listens: only the workers' listeners take clients. Wait until
        # they all do: a client that comes before would find one listener fewer.
        time.sleep(0.5)
    else:
        time.sleep(0.2)  # the workers reach their wait
    for start in range(0, clients, burst):
        socks = [socket.create_connection(address, timeout=5.0) for _ in range(min(burst, clients - start))]
        for sock in socks:
            sock.sendall(b"x")
        for sock in socks:
            with sock:
                sock.recv(1)
    for pid in pids:
        os.kill(pid, signal.SIGTERM)
    for pid in pids:
        os.waitpid(pid, 0)
    os.close(writer)
    with os.fdopen(reader) as results:
        counts = [tuple(int(word) for word in line.split()) for line in results]
    listener.close()
    return sorted(counts, reverse=True)


def queued_when_a_listener_closes() -> str:
    """Part 2: clients queued on one of two SO_REUSEPORT listeners when it closes."""
    first = new_listener(reuse_port=True)
    port = first.getsockname()[1]
    second = new_listener(reuse_port=True, port=port)
    second.settimeout(0.2)
    queued: list[socket.socket] = []
    outcomes = {"reset": 0, "served by the other listener": 0, "no answer": 0}
    with contextlib.ExitStack() as stack:
        # Connect until QUEUED clients wait in the first listener's queue: the hash sends
        # each one to either; those the second takes are accepted and let go at once.
        for _ in range(100 * QUEUED):
            sock = stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=5.0))
            sock.sendall(b"x")
            try:
                second.accept()[0].close()
            except TimeoutError:
                queued.append(sock)  # not in the second's queue within 0.2 s: in the first's
            if len(queued) == QUEUED:
                break
        first.close()  # its worker exits: its queue goes with it, or moves to the second
        for sock in queued:
            sock.settimeout(1.0)
            with contextlib.suppress(TimeoutError):
                accepted, _ = second.accept()
                with accepted:
                    accepted.sendall(accepted.recv(1))
            try:
                outcome = "served by the other listener" if sock.recv(1) == b"x" else "reset"
            except ConnectionResetError:
                outcome = "reset"
            except TimeoutError:
                outcome = "no answer"
            outcomes[outcome] += 1
    second.close()
    return ", ".join(f"{count} {what}" for what, count in outcomes.items() if count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--clients", type=int, default=400)
    args = parser.parse_args()
    designs: dict[str, Design] = {
        "inherited listener, blocking accept()": blocking_accept,
        "inherited listener, epoll": shared_epoll,
        "inherited listener, epoll + EPOLLEXCLUSIVE": shared_epoll_exclusive,
        "SO_REUSEPORT listener per worker, epoll": reuseport_epoll,
    }
    print(f"{args.workers} workers, {args.clients} clients; kernel {os.uname().release}")
    print("| design | clients come | taken by each worker | accept() found none | sleeps per client |")
    print("| --- | --- | --- | --- | --- |")
    for name, design in designs.items():
        for burst, how in ((1, "one at a time"), (args.workers, f"in bursts of {args.workers}")):
            counts = run_design(design, args.workers, args.clients, burst)
            taken = ", ".join(str(taken) for taken, _, _ in counts)
            wasted = sum(wasted for _, wasted, _ in counts)
            sleeps = sum(sleeps for _, _, sleeps in counts) / args.clients
            print(f"| {name} | {how} | {taken} | {wasted} | {sleeps:.1f} |")
    with open("/proc/sys/net/ipv4/tcp_migrate_req") as setting:
        migrate = setting.read().strip()
    print(
        f"\nnet.ipv4.tcp_migrate_req = {migrate}: {QUEUED} clients queued on a listener that closes: ", end=""
    )
    print(queued_when_a_listener_closes())


if __name__ == "__main__":
    main()
