"""pong: answers every connection with `pong <version>` (version.txt, editable by the team).

It listens on ports 8000-8007 so that one image can stand for several services in a game.
"""

import os
import socketserver
import threading

HERE = os.path.dirname(os.path.abspath(__file__))


class Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        with open(os.path.join(HERE, "version.txt")) as file:
            self.wfile.write(f"pong {file.read().strip()}\n".encode())


socketserver.ThreadingTCPServer.allow_reuse_address = True
servers = [socketserver.ThreadingTCPServer(("0.0.0.0", port), Handler) for port in range(8000, 8008)]
for server in servers[1:]:
    threading.Thread(target=server.serve_forever, daemon=True).start()
servers[0].serve_forever()
