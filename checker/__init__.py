"""Celery app, round clock, the checker runner (three protocols) and `checker.lib`."""
