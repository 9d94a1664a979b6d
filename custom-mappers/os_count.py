# Count pings per operating system -- the original (2014) Python mapper API.
#
# polymr calls mapper(uuid, file, js) once per valid record, where `uuid` is the
# ping's id, `file` the input file it came from, and `js` the parsed JSON. The
# returned text is written to the task's output unchanged: "<key> <value>\n",
# space-separated, as telemetry-analysis-base did. Records whose JSON does not
# parse never get here; polymr counts and reports them.


def mapper(uuid, file, js):
    return "%s 1\n" % js["info"]["OS"]
