#!/bin/sh
# Keep shop running: when the process exits (or a team kills it to load patched code),
# start it again after a second.
cd /srv/shop || exit 1
while true; do
    python3 /srv/shop/app.py --host 0.0.0.0 --port 8003 --data /srv/shop/data
    echo "run.sh: shop exited with status $?, restarting" >&2
    sleep 1
done
