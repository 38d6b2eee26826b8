#!/bin/sh
# What the test lab needs beyond Debian packages: the jars of the Hazelcast member that
# stands in for OpenMeetings' cluster layer (omwizard/lab/hazelcast.py). Idempotent:
# offline first, Maven Central only for what is missing. Prints where the jars are.
# The local repository is $OMW_M2_REPO (default ~/.m2/repository), as the lab reads it.
set -eu
REPO="${OMW_M2_REPO:-$HOME/.m2/repository}"
HAZELCAST_VERSION=5.5.0   # keep in step with omwizard/lab/hazelcast.py
SLF4J_VERSION=2.0.16
for artifact in "com.hazelcast:hazelcast:$HAZELCAST_VERSION" \
                "org.slf4j:slf4j-api:$SLF4J_VERSION" \
                "org.slf4j:slf4j-simple:$SLF4J_VERSION"; do
    group=${artifact%%:*}; rest=${artifact#*:}; name=${rest%%:*}; version=${rest#*:}
    jar="$REPO/$(echo "$group" | tr . /)/$name/$version/$name-$version.jar"
    if [ ! -f "$jar" ]; then
        mvn -q -B -o "-Dmaven.repo.local=$REPO" dependency:get "-Dartifact=$artifact" \
            -Dtransitive=false >/dev/null 2>&1 ||
        mvn -q -B "-Dmaven.repo.local=$REPO" dependency:get "-Dartifact=$artifact" \
            -Dtransitive=false >&2
    fi
    [ -f "$jar" ] || { echo "lab-deps: $artifact not in $REPO" >&2; exit 1; }
    echo "$jar"
done
