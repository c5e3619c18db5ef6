"""Stop a listening socket from queueing new connections, on Linux.

Closing a listening TCP socket resets every connection the kernel has
already accepted for it but the server has not: a client that sent its
request on one gets no answer, and cannot tell whether the request was
applied. A server that stops therefore first keeps new connections out
of that queue, then accepts the ones queued, then closes the socket.

There is no call for the first step; a socket filter does it. The filter
below drops every TCP segment that opens a connection (SYN without ACK)
and keeps every other, so handshakes already under way complete into
the queue while a new client's SYN goes unanswered. That client sends
it again after its retransmission timeout (a second on Linux), finds the
port closed by then, and gets a refusal: a connection that carried no
request, which every client and proxy may retry (nginx tries the next
replica whatever the method).
"""

import ctypes
import socket
import sys

# SO_ATTACH_FILTER of <asm-generic/socket.h>; Python does not name it.
SO_ATTACH_FILTER = 26
# Classic BPF opcodes of <linux/filter.h>.
_LOAD_BYTE = 0x30         # BPF_LD | BPF_B | BPF_ABS
_AND = 0x54               # BPF_ALU | BPF_AND | BPF_K
_JUMP_IF_EQUAL = 0x15     # BPF_JMP | BPF_JEQ | BPF_K
_RETURN = 0x06            # BPF_RET | BPF_K
# A filter on a TCP socket sees each segment from its TCP header on:
# byte 13 holds the flags.
_TCP_FLAGS_OFFSET = 13
_SYN, _ACK = 0x02, 0x10
_DROP, _KEEP = 0, 0xFFFFFFFF


class _Instruction(ctypes.Structure):
    """``struct sock_filter``: one classic BPF instruction."""

    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8),
                ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _Program(ctypes.Structure):
    """``struct sock_fprog``: the instructions' count and address."""

    _fields_ = [("len", ctypes.c_ushort),
                ("filter", ctypes.POINTER(_Instruction))]


_DROP_SYN = (
    (_LOAD_BYTE, 0, 0, _TCP_FLAGS_OFFSET),
    (_AND, 0, 0, _SYN | _ACK),
    # SYN alone: the next instruction; anything else: the one after.
    (_JUMP_IF_EQUAL, 0, 1, _SYN),
    (_RETURN, 0, 0, _DROP),
    (_RETURN, 0, 0, _KEEP),
)


def refuse_new_connections(sock):
    """Keep new connections out of a listening socket's queue.

    Return True once the kernel drops every new connection's SYN for
    ``sock``; False where that cannot be done (not Linux, not TCP, or
    the kernel refused the filter), in which case connections keep
    arriving until the socket closes.
    """
    if not sys.platform.startswith("linux") or sock.family not in (
            socket.AF_INET, socket.AF_INET6):
        return False
    instructions = (_Instruction * len(_DROP_SYN))(
        *(_Instruction(*instruction) for instruction in _DROP_SYN))
    program = _Program(len(_DROP_SYN), ctypes.cast(
        instructions, ctypes.POINTER(_Instruction)))
    try:
        # The kernel copies the instructions during the call; they only
        # need to live until it returns.
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, bytes(program))
    except OSError:
        return False
    return True
