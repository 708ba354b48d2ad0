#!/bin/sh
# Keep notes running: when the process exits (or a team kills it to load patched code),
# start it again after a second.
cd /srv/notes || exit 1
while true; do
    python3 /srv/notes/app.py --host 0.0.0.0 --port 8001 --data /srv/notes/data
    echo "run.sh: notes exited with status $?, restarting" >&2
    sleep 1
done
