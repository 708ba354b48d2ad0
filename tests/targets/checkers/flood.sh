#!/bin/sh
# Floods stdout and stderr with far more than the runner keeps, then succeeds.
head -c 20000000 /dev/zero | tr '\0' 'a'
head -c 20000000 /dev/zero | tr '\0' 'b' >&2
exit 101
