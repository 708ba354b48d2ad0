#!/bin/sh
# Hangs forever after forking a child and a double-forked (orphaned) grandchild; prints their pids.
sleep 1000 &
echo "child $!" >&2
( sleep 1000 & echo "orphan $!" >&2 ) 
echo "self $$" >&2
sleep 1000
