# Sum the counts of each key -- mozilla/telemetry-server's MapReduce API.
#
# `values` is a list of the JSON-decoded values of one key, in the order they were
# written (as job.py's Collector gave them; past POLYMR_HELPER_VALUES_MEMORY it is a
# read-only sequence spilled to disk); output goes through context.write(key, value). combine() runs on each map task's output before the
# shuffle, so it must give what reduce() accepts: here both are the same sum.


def reduce(key, values, context):
    context.write(key, sum(int(v) for v in values))


def combine(key, values, context):
    context.write(key, sum(int(v) for v in values))
