#!/bin/sh
# The peers' plain Python mapper (map.py) run by polymr as a binary mapper: isolates the
# driver from the Python helper.
exec /usr/bin/python3 /work/shared/bench/map.py "$@"
