"""A private redis-server: free port or given one, a password, AOF on, its own data dir
(demo, tests, benchmarks)."""

from __future__ import annotations

import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis

from .supervisor import die_with_parent


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class RedisServer:
    """Starts `redis-server` with AOF and stops it; restartable.

    AOF is fsynced before every reply (``appendfsync always``): with ``everysec`` Redis
    postpones the AOF write while a background fsync is still running (up to 2 s) yet
    answers clients, so even a kill -9 of redis-server alone could lose an accepted flag.
    """

    def __init__(self, directory: Path | None = None, port: int | None = None, password: str | None = None) -> None:
        if not shutil.which("redis-server"):
            raise RuntimeError("redis-server is not installed: run `make test` (it installs it) "
                               "or `apt-get install redis-server`")
        self.dir = directory or Path(tempfile.mkdtemp(prefix="adrange-redis-"))
        self.port = port or free_port()
        self.password = password or secrets.token_urlsafe(18)  # always one: nobody else on the host gets in
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
             "--appendonly", "yes", "--appendfsync", "always", "--save", "",
             "--maxclients", "20000", "--protected-mode", "no", "--requirepass", self.password],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=die_with_parent,
        )
        client = redis.Redis(port=self.port, password=self.password)
        deadline = time.monotonic() + 15
        while True:
            try:
                if client.ping():
                    break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.05)
        client.close()
        return self

    def kill(self) -> None:
        """Kill -9, as a crash would."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def ensure_redis(url: str, directory: Path, say: Callable[[str], None]) -> RedisServer | None:
    """Make sure the game's Redis answers: None when one already does; a redis-server of our
    own (the URL's port and password, AOF under `directory`) when the URL is local and
    nothing listens; RuntimeError naming the cause otherwise (a remote Redis down, a
    wrong password)."""
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    kwargs = client.connection_pool.connection_kwargs
    shown = re.sub(r"//[^@/]*@", "//***@", url)
    try:
        client.ping()
        say(f"using the Redis at {shown}")
        return None
    except (redis.AuthenticationError, redis.ResponseError) as exc:  # before ConnectionError: a subclass
        raise RuntimeError(f"the Redis at {shown} refuses the game's password ({exc}): fix redis_url or stop "
                           "that Redis") from None
    except redis.ConnectionError as exc:
        if kwargs.get("host") not in LOCAL_HOSTS or "path" in kwargs:
            raise RuntimeError(f"the Redis at {shown} does not answer: {exc}") from None
    finally:
        client.close()
    if not kwargs.get("password"):
        raise RuntimeError(f"nothing answers at {shown}, and adrange starts its own Redis only with a password: "
                           "put one in redis_url (redis://:PASSWORD@127.0.0.1:6379/0)")
    say(f"starting redis-server on port {kwargs['port']} (AOF, fsync always, data in {directory})")
    return RedisServer(directory, kwargs["port"], kwargs.get("password")).start()
