#!/bin/sh
# Restart loop: the service comes back a second after it dies.
while true; do python3 /srv/pong/app.py; sleep 1; done
