"""Listening sockets: bind one, and at shutdown close it without resetting the connections queued on it."""

from __future__ import annotations

import asyncio
import ctypes
import socket
import struct
import sys
from collections.abc import Callable

__all__ = ["BACKLOG", "accept_queue_length", "bind", "drain_accept_queue", "refuse_new_connections"]

BACKLOG = 2048
# Linux <asm-generic/socket.h> and <linux/filter.h>: classic BPF socket filters (socket(7), "SO_ATTACH_FILTER").
SO_ATTACH_FILTER = 26
_BPF_LD_B_ABS, _BPF_ALU_AND_K, _BPF_JEQ_K, _BPF_RET_K = 0x30, 0x54, 0x15, 0x06
_TCP_SYN, _TCP_ACK = 0x02, 0x10
# Drop a TCP segment whose flags are SYN without ACK (a new connection), keep everything else: the handshakes
# already under way complete into the accept queue, new ones hear nothing, retry their SYN after about 1 s,
# and by then the closed listener answers RST: the client sees "connection refused", never a reset request.
# A socket filter sees the segment from its TCP header on; byte 13 holds the flags.
_DROP_NEW_SYNS = (
    (_BPF_LD_B_ABS, 0, 0, 13),
    (_BPF_ALU_AND_K, 0, 0, _TCP_SYN | _TCP_ACK),
    (_BPF_JEQ_K, 0, 1, _TCP_SYN),
    (_BPF_RET_K, 0, 0, 0),
    (_BPF_RET_K, 0, 0, 0xFFFFFFFF),
)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0 picks one), ready for uvicorn's serve(sockets=...)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def refuse_new_connections(sock: socket.socket) -> bool:
    """Attach the drop-new-SYNs filter; False where the OS has no classic BPF socket filters."""
    if not sys.platform.startswith("linux"):
        return False
    program = b"".join(struct.pack("HBBI", *insn) for insn in _DROP_NEW_SYNS)
    buffer = ctypes.create_string_buffer(program, len(program))
    # struct sock_fprog { unsigned short len; struct sock_filter *filter; } (native alignment, like C).
    fprog = struct.pack("HP", len(_DROP_NEW_SYNS), ctypes.addressof(buffer))
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
    except OSError:
        return False
    return True


def accept_queue_length(sock: socket.socket) -> int | None:
    """Connections the kernel has completed but nobody accepted yet, or None if the OS does not say.

    Linux reports it for a listening socket in TCP_INFO's tcpi_unacked (tcp(7); what `ss -l` shows as Recv-Q).
    """
    tcp_info = getattr(socket, "TCP_INFO", None)
    if tcp_info is None or not sys.platform.startswith("linux"):
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, tcp_info, 104)
    except OSError:
        return None
    # struct tcp_info: 8 one-byte fields, then tcpi_rto, tcpi_ato, tcpi_snd_mss, tcpi_rcv_mss, tcpi_unacked.
    (unacked,) = struct.unpack_from("I", info, 8 + 4 * 4)
    return int(unacked)


async def drain_accept_queue(sock: socket.socket, unread: Callable[[], int], within: float) -> int:
    """Stop new connections, then wait until the queued ones are accepted and have been read; return how many
    were still queued or unread when `within` seconds ran out (0 is the goal)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    if not refuse_new_connections(sock):
        return 0
    while loop.time() < deadline:
        queued = accept_queue_length(sock) or 0
        if queued == 0 and unread() == 0:
            return 0
        await asyncio.sleep(0.005)
    return (accept_queue_length(sock) or 0) + unread()
