"""A trivial gRPC servicer in its own process: the floor a city node's calls stand on.

    python -m benchmarks.echo_server --port-file PATH

It serves `/bench.Echo/Echo` (the request comes back as it is) over the node's own
mutual TLS, from the certificate settings a node reads (CIVFED_TLS_*_FILE), with the same
thread pool size as a node's server, and writes the port it bound to `--port-file`.
It stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.grpc.server import EXCLUSIVE, WORKERS  # noqa: E402
from services.grpc.tls import server_credentials  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port-file", type=Path, required=True)
    args = parser.parse_args()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=WORKERS), options=EXCLUSIVE)
    handler = grpc.unary_unary_rpc_method_handler(lambda req, ctx: req)
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("bench.Echo", {"Echo": handler})])
    creds = server_credentials(
        Path(os.environ["CIVFED_TLS_CERT_FILE"]),
        Path(os.environ["CIVFED_TLS_KEY_FILE"]),
        Path(os.environ["CIVFED_TLS_CA_FILE"]),
    )
    port = server.add_secure_port("127.0.0.1:0", creds)
    server.start()
    done = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    partial = args.port_file.with_name(f".{args.port_file.name}.partial")
    partial.write_text(f"{port}\n")
    partial.replace(args.port_file)
    done.wait()
    server.stop(0).wait()


if __name__ == "__main__":
    main()
