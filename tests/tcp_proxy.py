"""A small threaded TCP proxy on the loopback interface, for network-fault tests.

Placed between a DR task and one of its servers (the task's endpoint points at `proxy.port`), it
forwards bytes both ways until told otherwise:

- `drop_all()` closes every open connection at once (both ends, with a reset: the peer sees
  "connection reset" / "lost connection"); new connections are accepted as before.
- `stall(seconds)` stops forwarding without closing anything (a network that goes silent: data in
  flight is held, new connections are accepted but get no answer); `resume()` (or the end of
  `seconds`) lets everything through again, nothing lost.
- `freeze_existing()` stops forwarding on the connections open now, for good, without closing them,
  while new connections work (a path that went dead without a reset: a server host that vanished, a
  firewall or NAT that forgot the connection); `close()` ends them.
- `refuse(True)` closes every new connection as soon as it is accepted (a server that is gone while
  its port still answers), until `refuse(False)`.

Only 127.0.0.1 is used, on both sides. Every thread is a daemon and `close()` ends them all.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading

CHUNK = 65536


class TcpProxy:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1"):
        if upstream_host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the test proxy forwards to loopback addresses only")
        self.upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._frozen: dict[socket.socket, threading.Event] = {}  # per connection: set = forwarding
        self._flowing = threading.Event()
        self._flowing.set()
        self._refusing = False
        self._closed = False
        self._timer: threading.Timer | None = None
        self.accepted = 0  # connections accepted so far
        self.dropped = 0  # connections closed by drop_all()
        self._thread = threading.Thread(target=self._accept_loop, name=f"tcp-proxy-{self.port}", daemon=True)
        self._thread.start()

    # -- faults ---------------------------------------------------------------------------------------
    def drop_all(self) -> int:
        """Close every open connection (with a TCP reset); returns how many were open."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for a, b in pairs:
            _reset(a)
            _reset(b)
        self.dropped += len(pairs)
        return len(pairs)

    def stall(self, seconds: float | None = None) -> None:
        """Stop forwarding (nothing is closed); forward again after `seconds`, or at `resume()`."""
        self._cancel_timer()
        self._flowing.clear()
        if seconds is not None:
            self._timer = threading.Timer(seconds, self.resume)
            self._timer.daemon = True
            self._timer.start()

    def resume(self) -> None:
        self._cancel_timer()
        self._flowing.set()

    def freeze_existing(self) -> int:
        """Stop the connections open now for good (nothing closed); returns how many."""
        with self._lock:
            pairs = list(self._pairs)
            for client, _upstream in pairs:
                self._frozen[client].clear()
        return len(pairs)

    def refuse(self, on: bool = True) -> None:
        self._refusing = on

    @property
    def stalled(self) -> bool:
        return not self._flowing.is_set()

    def open_connections(self) -> int:
        with self._lock:
            return len(self._pairs)

    def close(self) -> None:
        self._closed = True
        self.resume()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() below (close() alone does not)
        with contextlib.suppress(OSError):
            self._listener.close()
        self.drop_all()
        with self._lock:
            for gate in self._frozen.values():
                gate.set()  # frozen pumps wake up, meet their closed sockets and end
        self._thread.join(5)

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------------------------
    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _addr = self._listener.accept()
            except OSError:
                return  # closed
            self.accepted += 1
            if self._refusing:
                _reset(client)
                continue
            threading.Thread(target=self._open, args=(client,), daemon=True).start()

    def _open(self, client: socket.socket) -> None:
        # A stalled network does not even let the connection through to the server.
        self._flowing.wait()
        if self._closed:
            _reset(client)
            return
        try:
            upstream = socket.create_connection(self.upstream, timeout=10)
            upstream.settimeout(None)
        except OSError:
            _reset(client)  # the server is down: the client sees its connection go
            return
        for s in (client, upstream):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        gate = threading.Event()
        gate.set()
        with self._lock:
            self._pairs.append((client, upstream))
            self._frozen[client] = gate
        threading.Thread(target=self._pump, args=(client, upstream, gate), daemon=True).start()
        threading.Thread(target=self._pump, args=(upstream, client, gate), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, gate: threading.Event) -> None:
        try:
            while True:
                self._flowing.wait()
                gate.wait()
                data = src.recv(CHUNK)
                if not data:
                    break
                # a stall (or freeze) that began while we waited in recv holds this chunk
                self._flowing.wait()
                gate.wait()
                dst.sendall(data)
        except OSError:
            pass
        # one side closed: close both (as a network path would), unless drop_all() already did
        with self._lock:
            pair = next((p for p in self._pairs if src in p), None)
            if pair is not None:
                self._pairs.remove(pair)
                self._frozen.pop(pair[0], None)
        if pair is not None:
            for s in pair:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    s.close()


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a dropped network path or a killed process."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
