"""Query a running `bigml-fs serve` once, for `make demo`: ``python -m bigml_fs.example.demo_server``.

Starts the server on a free local port in a child process, waits for
``GET /health``, sends one ``POST /features`` (Feast's feature-server JSON),
prints the answer and stops the server.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request

REQUEST = {
    "features": ["customer_spend:txn_count_1h", "customer_spend:amount_sum_7d", "customer_profile:segment"],
    "entities": {"customer_id": [1, 2, 3]},
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def call(url: str, body: dict | None = None, timeout: float = 5.0) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def main() -> int:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "bigml_fs", "serve", "--port", str(port), "--quiet"])
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = call(f"{base}/health")
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    print("the server did not start", file=sys.stderr)
                    return 1
                time.sleep(0.3)
        print(f"GET {base}/health -> {json.dumps(health)[:200]}")
        print(f"POST {base}/features {json.dumps(REQUEST)}")
        answer = call(f"{base}/features", REQUEST)
        for name, result in zip(answer["metadata"]["feature_names"], answer["results"], strict=True):
            print(f"  {name:<16} {json.dumps(result)}")
        return 0
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
