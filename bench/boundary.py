"""The runner boundary's transport: a socketpair (what localoip uses), a pair of pipes, and
ZeroMQ PAIR sockets over ipc:// (when pyzmq is installed), measured in the same run.

A child process echoes frames. Two figures per transport: the p50 round trip of one call
(a small request frame out, a Done frame back), and the time per streamed Item when the
child sends 2 000 of them (a delta's size) as fast as it can. Both are what a user's request
pays on top of the model; a token takes 10 ms or more.
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

from common import Figure, arguments, median, report

ITEMS = 2000
HEAD = struct.Struct("<I")


class Framed:
    """Length-prefixed frames over a readable and a writable file descriptor."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.reader = os.fdopen(read_fd, "rb", buffering=1 << 16, closefd=False)
        self.write_fd = write_fd

    def send(self, payload: bytes) -> None:
        os.write(self.write_fd, HEAD.pack(len(payload)) + payload)

    def receive(self) -> bytes:
        (size,) = HEAD.unpack(self.reader.read(4))
        return self.reader.read(size)


class Zmq:
    def __init__(self, address: str, bind: bool) -> None:
        import zmq

        self.sock = zmq.Context.instance().socket(zmq.PAIR)
        (self.sock.bind if bind else self.sock.connect)(address)

    def send(self, payload: bytes) -> None:
        self.sock.send(payload)

    def receive(self) -> bytes:
        return self.sock.recv()


def frames() -> tuple[bytes, bytes, bytes]:
    """A chat call, its Done, and one streamed delta, encoded as localoip sends them."""
    from localoip.app.core.runners.wire import ENCODER, Call, Done, Item, encode
    from localoip.runtimes.capabilities import ChatMessage, ChatRequest, Sampling, TextDelta

    request = ChatRequest([ChatMessage("user", "Hello there!")], Sampling(max_tokens=128))
    call = ENCODER.encode(Call(1, "chat_stream", encode((request,))))
    done = ENCODER.encode(Done(1, encode(None)))
    item = ENCODER.encode(Item(1, encode(TextDelta(" word"))))
    return call, done, item


def child(kind: str, where: str) -> None:
    """Echo: a call frame gets a Done; a 4-byte frame `many` gets ITEMS items, then a Done."""
    _, done, item = frames()
    if kind == "zmq":
        link: Framed | Zmq = Zmq(where, bind=False)
    else:
        read_fd, write_fd = map(int, where.split(","))
        link = Framed(read_fd, write_fd)
    while True:
        try:
            payload = link.receive()
        except (struct.error, OSError):
            return
        if payload == b"many":
            for _ in range(ITEMS):
                link.send(item)
        link.send(done)


def start(kind: str) -> tuple[Framed | Zmq, subprocess.Popen]:
    me = [sys.executable, __file__, "--child", kind]
    if kind == "socketpair":
        ours, theirs = socket.socketpair()
        proc = subprocess.Popen(
            [*me, f"{theirs.fileno()},{theirs.fileno()}"], pass_fds=[theirs.fileno()]
        )
        theirs.close()
        link: Framed | Zmq = Framed(ours.detach(), 0)
        link.write_fd = link.reader.fileno()
        return link, proc
    if kind == "pipes":
        down_r, down_w = os.pipe()
        up_r, up_w = os.pipe()
        proc = subprocess.Popen([*me, f"{down_r},{up_w}"], pass_fds=[down_r, up_w])
        os.close(down_r)
        os.close(up_w)
        return Framed(up_r, down_w), proc
    address = f"ipc://{tempfile.mkdtemp()}/boundary"
    link = Zmq(address, bind=True)
    return link, subprocess.Popen([*me, address])


def measure_one(kind: str, runs: int) -> tuple[float, float]:
    """(p50 call round trip, mean seconds per streamed item)."""
    call, _, _ = frames()
    link, proc = start(kind)
    try:

        def timed(action: Callable[[], None]) -> float:
            begin = time.perf_counter()
            action()
            return time.perf_counter() - begin

        def round_trip() -> None:
            link.send(call)
            link.receive()

        def stream() -> None:
            link.send(b"many")
            for _ in range(ITEMS + 1):
                link.receive()

        for _ in range(50):
            round_trip()
        trips = [timed(round_trip) for _ in range(runs)]
        per_item = median(timed(stream) for _ in range(5)) / ITEMS
        return median(trips), per_item
    finally:
        proc.kill()
        proc.wait()


def measure(runs: int) -> list[Figure]:
    kinds = ["socketpair", "pipes"]
    try:
        import zmq  # noqa: F401

        kinds.append("zmq")
    except ImportError:
        print("pyzmq is not installed: ZeroMQ is left out", flush=True)
    figures = []
    for kind in kinds:
        trip, item = measure_one(kind, runs)
        figures.append(Figure(f"{kind}: call round trip (p50)", trip * 1e6, "µs"))
        figures.append(Figure(f"{kind}: per streamed item", item * 1e6, "µs"))
    return figures


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
        return
    args = arguments(__doc__, runs=2000).parse_args()
    report(measure(args.runs), args.json)


if __name__ == "__main__":
    main()
