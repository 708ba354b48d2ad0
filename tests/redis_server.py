"""Moved to deploy/redis_server.py; kept while colleagues switch over."""

from deploy.redis_server import RedisServer, free_port

__all__ = ["RedisServer", "free_port"]
