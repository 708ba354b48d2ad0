#!/bin/sh
# Runs the Java checker with the JDK's source launcher (the JVM reserves its heap up front).
exec java -Xmx512m -XX:+UseSerialGC Probe.java "$@"
