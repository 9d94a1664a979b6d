#!/bin/sh
# Count pings per operating system -- a native mapper in plain (POSIX) awk,
# Hadoop Streaming style: "<uuid>\t<json>" records on stdin, "OS\t1" per record on
# stdout. It finds "OS":"<value>" as text, without parsing JSON; records without
# it are skipped and counted (a reporter counter on stderr). Works with mawk,
# gawk and busybox awk. Configure it with `language: binary`.
exec awk '
$0 == "" { next }
{
    i = index($0, "\"OS\":\"")
    if (i == 0) { skipped++; next }
    rest = substr($0, i + 6)
    value = ""
    # up to the next quote that is not escaped by a backslash
    while ((j = index(rest, "\"")) > 1 && substr(rest, j - 1, 1) == "\\") {
        value = value substr(rest, 1, j)
        rest = substr(rest, j + 1)
    }
    if (j == 0) { skipped++; next }
    print value substr(rest, 1, j - 1) "\t1"
}
END {
    if (skipped > 0)
        print "reporter:counter:os_count,lines_without_os," skipped > "/dev/stderr"
}
' "$@"
