#!/bin/sh
# Reports who runs it, where, and with which environment.
echo "uid=$(id -u) cwd=$(pwd) home=$HOME secret=${ADRANGE_TEST_SECRET:-unset}"
exit 101
