"""The io_uring rings through ctypes and mmap: the standard library has no binding, and
PyPI's `liburing` is pre-alpha (kernel 6.14+, open segfault reports). Two syscalls and
three maps are all an echo server needs.

The protocol. io_uring_setup() maps two rings shared with the kernel. Submission (SQ):
we write a request (an SQE: opcode, fd, buffer, our tag) into the SQE array, its index
into the SQ index array (here fixed: slot i holds i), then advance the SQ tail; the
kernel consumes entries inside io_uring_enter() and advances the SQ head. Completion
(CQ): the kernel writes CQEs (tag, result: a count or -errno) and advances the CQ tail;
we read up to it, then advance the CQ head to give the slots back. Each side owns the
index it advances. A full CQ loses nothing (FEAT_NODROP): the kernel keeps the rest
aside, flags SQ_CQ_OVERFLOW, and moves them in at the next io_uring_enter(GETEVENTS).

Memory ordering. The SQEs must be visible before the SQ tail that publishes them, and a
CQE read only after the CQ tail that covers it: a store-release and a load-acquire in C.
Python's loads and stores through mmap are plain ones. Without SQPOLL the kernel reads
the SQ only inside our io_uring_enter(), a syscall and so a full barrier; but the CQ is
written by other CPUs at any time. On x86-64 (TSO) plain loads and stores are acquire
and release ones; on weakly ordered CPUs (aarch64) they are not, and Python cannot issue
the barrier: hence the need for x86-64 (missing()).
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import platform
import struct
from collections.abc import Iterator

SYS_SETUP, SYS_ENTER = 425, 426  # the same in x86-64's table and the generic one
OP_ACCEPT, OP_ASYNC_CANCEL, OP_SEND, OP_RECV = 13, 14, 26, 27
SETUP_CQSIZE, OFF_SQES = 1 << 3, 0x10000000
FEAT_SINGLE_MMAP, FEAT_NODROP, FEAT_EXT_ARG = 1 << 0, 1 << 1, 1 << 8
ENTER_GETEVENTS, ENTER_EXT_ARG = 1 << 0, 1 << 3
U32 = 0xFFFFFFFF  # head and tail are u32s that wrap; their difference counts, mod 2**32
RETRY = {errno.EINTR, errno.ETIME, errno.EBUSY, errno.EAGAIN}
CANCELS = 0  # the tag (user_data) of our cancel requests: their completions are not passed on
Buffer = ctypes.Array[ctypes.c_char]
SQE = struct.Struct("=BBHiQQIIQHHiQQ")  # opcode flags ioprio fd off addr len op_flags user_data...
CQE = struct.Struct("=QiI")  # user_data res flags
PARAMS = struct.Struct("=10I" + "7IIQ" + "8IQ")  # io_uring_params, its sq_off and cq_off
GETEVENTS_ARG = struct.Struct("=QIIQ")  # sigmask, sigmask_sz, pad, pointer to a timespec

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def syscall(number: int, *args: int) -> int:
    result: int = libc.syscall(*(ctypes.c_long(arg) for arg in (number, *args)))
    if result < 0:
        raise error(-ctypes.get_errno())
    return result


def missing() -> str | None:
    """Why this machine cannot run the rings (one line), or None: io_uring_setup() once."""
    if platform.machine() != "x86_64":
        return f"plain loads and stores order the rings only on x86-64, not on {platform.machine()}"
    params = ctypes.create_string_buffer(PARAMS.size)
    try:
        os.close(syscall(SYS_SETUP, 1, ctypes.addressof(params)))
    except OSError as refusal:  # seccomp (EPERM), io_uring_disabled (EPERM), too old (ENOSYS)
        return f"this kernel refuses it: {refusal.strerror}"
    features = PARAMS.unpack(params.raw)[5]
    wanted = FEAT_SINGLE_MMAP | FEAT_NODROP | FEAT_EXT_ARG
    return None if features & wanted == wanted else "this kernel is older than 5.11"


def error(result: int) -> OSError:
    """A completion's -errno as recv() would raise it: OSError picks the subclass."""
    return OSError(-result, os.strerror(-result))


class Ring:
    """One io_uring: room for `entries` requests, and a CQ of cq_entries completions.

    It keeps each request's buffer (and so its memory) until the request completes:
    the kernel may write into it until then, even after its socket is closed."""

    def __init__(self, entries: int, cq_entries: int) -> None:
        params = ctypes.create_string_buffer(PARAMS.size)
        struct.pack_into("=III", params, 0, entries, cq_entries, SETUP_CQSIZE)
        self.fd = syscall(SYS_SETUP, entries, ctypes.addressof(params))
        fields = PARAMS.unpack(params.raw)
        self.entries, cq_entries = fields[0], fields[1]
        sq_head, sq_tail, _, _, _, _, sq_array = fields[10:17]
        cq_head, cq_tail, cq_mask, _, _, cqes = fields[19:25]
        size = max(sq_array + 4 * self.entries, cqes + CQE.size * cq_entries)
        self.rings = mmap.mmap(self.fd, size, offset=0)  # SQ and CQ rings: one map (SINGLE_MMAP)
        self.sqes = mmap.mmap(self.fd, SQE.size * self.entries, offset=OFF_SQES)
        self.ints = memoryview(self.rings).cast("I")  # the ring fields are u32s, 4-aligned
        self.sq_head, self.sq_tail = sq_head // 4, sq_tail // 4
        self.cq_head, self.cq_tail, self.cqes = cq_head // 4, cq_tail // 4, cqes
        self.cq_mask = self.ints[cq_mask // 4]
        for index in range(self.entries):  # the index array: slot i names SQE i, for good
            self.ints[sq_array // 4 + index] = index
        self.tail = self.ints[self.sq_tail]  # ours: the kernel only reads it
        self.timespec = ctypes.create_string_buffer(16)
        self.arg = ctypes.create_string_buffer(GETEVENTS_ARG.size)
        GETEVENTS_ARG.pack_into(self.arg, 0, 0, 0, 0, ctypes.addressof(self.timespec))
        self.flights: dict[int, Buffer | None] = {}  # tag -> buffer, while in flight

    def submit(self, op: int, fd: int, tag: int, buf: Buffer | None = None, length: int = 0) -> None:
        """Queue a request for the next enter(); its buffer is kept until it completes."""
        address = ctypes.addressof(buf) if buf is not None else 0
        self.queue(op, fd, tag, address, length or (len(buf) if buf is not None else 0))
        self.flights[tag] = buf

    def cancel(self, tag: int) -> None:
        """Ask the kernel to end a request: it completes with -ECANCELED (or its result)."""
        if tag in self.flights:
            self.queue(OP_ASYNC_CANCEL, -1, CANCELS, tag, 0)

    def queue(self, op: int, fd: int, user_data: int, address: int, length: int) -> None:
        if (self.tail - self.ints[self.sq_head]) & U32 == self.entries:
            self.enter(0, None)  # a full SQ: the kernel consumes every queued SQE, room again
        offset = self.tail % self.entries * SQE.size  # the fields after user_data: all 0
        SQE.pack_into(self.sqes, offset, op, 0, 0, fd, 0, address, length, 0, user_data, 0, 0, 0, 0, 0)
        self.tail = (self.tail + 1) & U32
        self.ints[self.sq_tail] = self.tail  # after the SQE: the kernel reads it in enter()

    def enter(self, wait_for: int, timeout: float | None) -> None:
        """Submit everything queued; with wait_for=1, wait for a completion or the timeout."""
        flags = ENTER_GETEVENTS | (ENTER_EXT_ARG if timeout is not None else 0)
        if timeout is not None:
            seconds = int(timeout)
            struct.pack_into("=qq", self.timespec, 0, seconds, int((timeout - seconds) * 1e9))
        argument = ctypes.addressof(self.arg) if timeout is not None else 0
        to_submit = (self.tail - self.ints[self.sq_head]) & U32
        try:
            syscall(SYS_ENTER, self.fd, to_submit, wait_for, flags, argument, GETEVENTS_ARG.size)
        except OSError as failure:
            # EINTR: a signal, whose handler has run by now; ETIME: the deadline came first;
            # EBUSY, EAGAIN: the kernel is short of room or memory until we reap. Look again.
            if failure.errno not in RETRY:
                raise

    def completions(self) -> Iterator[tuple[int, int]]:
        """(tag, result) for each request completed so far; its buffer is free again."""
        head = self.ints[self.cq_head]
        while head != (tail := self.ints[self.cq_tail]):  # read the tail before the CQEs
            for position in range((tail - head) & U32):
                offset = self.cqes + ((head + position) & self.cq_mask) * CQE.size
                tag, result, _ = CQE.unpack_from(self.rings, offset)
                if tag != CANCELS:
                    del self.flights[tag]
                    yield tag, result
            head = tail
            self.ints[self.cq_head] = head  # after reading them: the kernel may reuse the slots

    def close(self) -> None:
        """Cancel what is in flight, and free no buffer before the kernel is done with it."""
        for tag in list(self.flights):
            self.cancel(tag)
        for _ in range(100):  # each cancel completes at once; bounded all the same
            self.enter(1 if self.flights else 0, 0.1)
            for _completion in self.completions():
                pass
            if not self.flights:
                break
        self.ints.release()
        self.rings.close()
        self.sqes.close()
        os.close(self.fd)
