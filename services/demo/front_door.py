"""A fixed loopback address for a city node that listens on whatever port it was given.

Partners must know a node's address when they start, but a node that binds port 0 learns
its port only once it has bound, and a node that restarts gets another one. The front
door holds one port for as long as the local federation lives and passes each connection
on, byte for byte, to the port the node listens on at that moment, so TLS stays end to
end between the two nodes. While no node is listening, a connection is closed at once,
which a gRPC client sees as UNAVAILABLE, as it would a refused one.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable

CONNECT_TIMEOUT = 2.0


class FrontDoor:
    def __init__(self, target: Callable[[], int | None], host: str = "127.0.0.1") -> None:
        self.host = host
        self._target = target
        self._listener = socket.create_server((host, 0))
        self.port: int = self._listener.getsockname()[1]
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, name=f"front-door-{self.port}", daemon=True).start()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            port = self._target()
            try:
                if port is None:
                    raise ConnectionRefusedError
                upstream = socket.create_connection((self.host, port), timeout=CONNECT_TIMEOUT)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            pair = (client, upstream)
            with self._lock:
                if self._closed:
                    _shut(*pair)
                    return
                self._open.update(pair)
            for s in pair:
                # gRPC's own sockets send without delay; so must the relay's.
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        """One direction of a connection; when either side ends, both do."""
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            _shut(source, sink)
            with self._lock:
                self._open.difference_update((source, sink))

    def close(self) -> None:
        """Stop accepting and end every connection passed on."""
        with self._lock:
            self._closed = True
            still_open = list(self._open)
            self._open.clear()
        # shutdown() wakes a thread blocked in accept() or recv(); close() alone may not.
        _shut(self._listener, *still_open)


def _shut(*sockets: socket.socket) -> None:
    for s in sockets:
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)
        s.close()
