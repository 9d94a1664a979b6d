#!/bin/sh
# Sum the values of each key -- a native reducer in plain (POSIX) awk, Hadoop
# Streaming style: reads "key\tvalue" lines sorted by key and prints "key\tsum"
# once per key. The key is the text before the first TAB (a line without one is
# all key, value 0); values are numbers (a JSON number is one). Works with mawk,
# gawk and busybox awk; sums are exact up to 2^53. Use it as a combiner too.
exec awk '
{
    i = index($0, "\t")
    if (i) { key = substr($0, 1, i - 1); value = substr($0, i + 1) }
    else { key = $0 ""; value = 0 }
    if (NR > 1 && key != current) {
        printf "%s\t%.0f\n", current, sum
        sum = 0
    }
    current = key
    sum += value
}
END {
    if (NR > 0)
        printf "%s\t%.0f\n", current, sum
}
' "$@"
