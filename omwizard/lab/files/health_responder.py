"""Lab stand-in for OpenMeetings' info REST service, for the verify section's health check.

Answers GET /openmeetings/services/info/health and /openmeetings/services/info/version with
the JSON shapes OpenMeetings returns; everything else is 404. Standard library only, so it
runs with the node's python3.
"""

import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def make_handler(healthy: bool, version: str) -> type[BaseHTTPRequestHandler]:
    """A handler class bound to this responder's answers."""
    bodies = {
        "/openmeetings/services/info/health":
            {"health": {"inited": True, "installed": True, "dbOk": healthy}},
        "/openmeetings/services/info/version":
            {"info": {"version": version, "revision": "omwlab",
                      "buildDate": "2025-01-01T00:00:00Z"}},
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            body = bodies.get(self.path.split("?", 1)[0].rstrip("/"))
            data = json.dumps(body).encode() if body else b'{"error":"not found"}'
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, fmt: str, *args) -> None:
            pass

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bind", required=True)
    parser.add_argument("--port", type=int, default=5080)
    parser.add_argument("--unhealthy", action="store_true")
    parser.add_argument("--version", default="9.1.0")
    args = parser.parse_args()
    server = ThreadingHTTPServer((args.bind, args.port),
                                 make_handler(not args.unhealthy, args.version))
    server.serve_forever()


if __name__ == "__main__":
    main()
