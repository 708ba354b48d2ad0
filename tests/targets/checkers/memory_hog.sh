#!/bin/sh
# A checker with a leak: it grabs 3 GiB, then claims the service is fine.
exec python3 -c 'import sys; hog = bytearray(3 * 1024 ** 3); print("all good"); sys.exit(101)'
