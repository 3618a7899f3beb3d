#!/usr/bin/env python3
"""The WAN harness's link emulator (bench/wan/README.md). Python 3 standard library only.

This kernel has no netem, and Node cannot open a TUN device (that takes an ioctl), so this one small process
owns every TUN device of a run: it creates them (IFF_TUN | IFF_NO_PI), keeps their file descriptors, and
moves each packet from the device it came out of to the device owning its IPv4 destination, through the
emulated link between the two: Bernoulli loss, then serialization at a rate behind a tail-drop queue measured
in milliseconds, then a delay with jitter that never reorders. The TypeScript side (emulator.ts) moves the
devices into their namespaces and gives them addresses; the devices vanish when this process exits, so a
crash leaves no device behind.

Protocol: argv[1] is a JSON file {"devices": [{"name", "address"}], "links": [LINK], "seed"?}.
LINK = {"a": name, "b": name, "ab": DIRECTION, "ba": DIRECTION} (ab: packets from a to b), DIRECTION =
{"delay_ms", "jitter_ms", "loss", "rate_mbps", "queue_ms"}. A packet between two devices with no link is
dropped (counted as "unrouted"). Once the devices exist it prints {"ready": true} on stdout. Then it reads
one JSON command per line on stdin and answers each with one line:
  {"op": "links", "links": [LINK]}      replace every link (queues and counters start empty)
  {"op": "stats"}                       {"stats": {"a>b": {delivered, bytes, queue_drops, lost, queued_ms}},
                                        "unrouted"}
End of stdin (the parent exited, even by SIGKILL) ends the process.
"""

import fcntl
import heapq
import json
import os
import random
import selectors
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
MAX_PACKET = 65536
# Packets read from one device per wake-up: bounded so that one busy device cannot starve the others or the
# delivery timers.
READ_BURST = 64
MAX_DEVICES = 32


class Direction:
    """One direction of one link: its parameters, its queue's state and its counters."""

    def __init__(self, spec, rng):
        self.delay = _number(spec, "delay_ms", 0, 10_000) / 1000
        self.jitter = _number(spec, "jitter_ms", 0, 10_000) / 1000
        self.loss = _number(spec, "loss", 0, 1)
        rate = _number(spec, "rate_mbps", 0.001, 100_000)
        self.seconds_per_byte = 8 / (rate * 1e6)
        self.queue = _number(spec, "queue_ms", 0, 10_000) / 1000
        self.rng = rng
        # When the (emulated) wire is free again, and when the last packet arrives: never reorder.
        self.busy_until = 0.0
        self.last_arrival = 0.0
        self.delivered = 0
        self.bytes = 0
        self.queue_drops = 0
        self.lost = 0

    def admit(self, size, now):
        """The time this packet comes out of the link, or None when the link drops it."""
        if self.loss and self.rng.random() < self.loss:
            self.lost += 1
            return None
        start = max(now, self.busy_until)
        # Tail drop: the packet would wait longer than the queue holds.
        if start - now > self.queue:
            self.queue_drops += 1
            return None
        self.busy_until = start + size * self.seconds_per_byte
        arrival = self.busy_until + self.delay
        if self.jitter:
            arrival += self.rng.uniform(-self.jitter, self.jitter)
        arrival = max(arrival, self.last_arrival, self.busy_until)
        self.last_arrival = arrival
        return arrival

    def stats(self, now):
        return {
            "delivered": self.delivered,
            "bytes": self.bytes,
            "queue_drops": self.queue_drops,
            "lost": self.lost,
            # How long a packet admitted now would wait for the wire: the queue's fill, in ms.
            "queued_ms": max(0.0, self.busy_until - now) * 1000,
        }


def _number(spec, key, low, high):
    value = spec.get(key, 0)
    if not isinstance(value, (int, float)) or not low <= value <= high:
        raise ValueError(f"{key} must be a number in [{low}, {high}], not {value!r}")
    return float(value)


def open_tun(name):
    if not (0 < len(name) <= 15 and name.replace("-", "").isalnum()):
        raise ValueError(f"bad device name {name!r}")
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def parse_address(text):
    parts = text.split(".")
    if len(parts) != 4 or not all(p.isdigit() and int(p) < 256 for p in parts):
        raise ValueError(f"bad IPv4 address {text!r}")
    return bytes(int(p) for p in parts)


class Forwarder:
    def __init__(self, config):
        devices = config["devices"]
        if not 0 < len(devices) <= MAX_DEVICES:
            raise ValueError("between 1 and 32 devices")
        self.rng = random.Random(config.get("seed"))
        self.names = [d["name"] for d in devices]
        self.fds = [open_tun(name) for name in self.names]
        self.by_address = {parse_address(d["address"]): i for i, d in enumerate(devices)}
        self.links = {}
        self.set_links(config.get("links", []))
        self.unrouted = 0
        self.pending = []  # heap of (arrival, sequence, device index, direction, packet)
        self.sequence = 0

    def set_links(self, links):
        index = {name: i for i, name in enumerate(self.names)}
        fresh = {}
        for link in links:
            a, b = index[link["a"]], index[link["b"]]
            fresh[(a, b)] = Direction(link["ab"], self.rng)
            fresh[(b, a)] = Direction(link["ba"], self.rng)
        self.links = fresh

    def stats(self):
        now = time.monotonic()
        return {
            "stats": {
                f"{self.names[a]}>{self.names[b]}": d.stats(now) for (a, b), d in self.links.items()
            },
            "unrouted": self.unrouted,
        }

    def receive(self, source, now):
        fd = self.fds[source]
        for _ in range(READ_BURST):
            try:
                packet = os.read(fd, MAX_PACKET)
            except BlockingIOError:
                return
            except OSError:
                # EBADFD/EIO while a device is down or moving to its namespace: nothing to read yet.
                return
            # IPv4 only (the namespaces have IPv6 switched off): the destination is bytes 16..20.
            target = self.by_address.get(packet[16:20]) if len(packet) >= 20 and packet[0] >> 4 == 4 else None
            direction = self.links.get((source, target)) if target is not None else None
            if direction is None:
                self.unrouted += 1
                continue
            arrival = direction.admit(len(packet), now)
            if arrival is not None:
                self.sequence += 1
                heapq.heappush(self.pending, (arrival, self.sequence, target, direction, packet))

    def deliver(self, now):
        while self.pending and self.pending[0][0] <= now:
            _, _, target, direction, packet = heapq.heappop(self.pending)
            try:
                os.write(self.fds[target], packet)
            except OSError:
                # The device is gone or down (teardown): the packet is lost like any other.
                direction.lost += 1
                continue
            direction.delivered += 1
            direction.bytes += len(packet)

    def command(self, line):
        try:
            request = json.loads(line)
            if request.get("op") == "links":
                self.set_links(request["links"])
                self.pending.clear()
                return {"ok": True}
            if request.get("op") == "stats":
                return self.stats()
            return {"error": "unknown op"}
        except (ValueError, KeyError, TypeError) as error:
            return {"error": str(error)}

    def run(self):
        # select(2), not epoll: epoll's timeout is whole milliseconds (rounded up: every packet up to 1 ms late on
        # every link it crosses; rounded down: a busy loop whenever a packet is due within the millisecond), while
        # select's is in microseconds. A run has a handful of devices, far below select's limit.
        selector = selectors.SelectSelector()
        for i, fd in enumerate(self.fds):
            selector.register(fd, selectors.EVENT_READ, i)
        stdin = sys.stdin.fileno()
        os.set_blocking(stdin, False)
        selector.register(stdin, selectors.EVENT_READ, "stdin")
        buffered = b""
        while True:
            now = time.monotonic()
            self.deliver(now)
            timeout = max(0.0, self.pending[0][0] - now) if self.pending else None
            for key, _ in selector.select(timeout):
                if key.data == "stdin":
                    chunk = os.read(stdin, 65536)
                    if not chunk:
                        return
                    buffered += chunk
                    if len(buffered) > 1 << 20:
                        raise ValueError("command line too long")
                    while b"\n" in buffered:
                        line, buffered = buffered.split(b"\n", 1)
                        if line.strip():
                            print(json.dumps(self.command(line)), flush=True)
                else:
                    self.receive(key.data, time.monotonic())


def main():
    with open(sys.argv[1], encoding="utf-8") as file:
        config = json.load(file)
    forwarder = Forwarder(config)
    print(json.dumps({"ready": True}), flush=True)
    try:
        forwarder.run()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
