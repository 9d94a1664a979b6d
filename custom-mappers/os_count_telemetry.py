# Count pings per operating system -- mozilla/telemetry-server's MapReduce API.
#
# polymr calls map(key, dims, value, context) once per record: `key` is the ping's
# uuid, `dims` the dimensions parsed from the file name ([reason, appName,
# appUpdateChannel, appVersion, appBuildID, submissionDate]), `value` the raw JSON
# text, which the job parses itself. context.write(key, value) emits a pair.
import json
import sys


def map(key, dims, value, context):
    try:
        ping = json.loads(value)
        os_name = ping["info"]["OS"]
    except (ValueError, KeyError, TypeError):
        # Not fatal: count it (a Hadoop Streaming counter, summed into the report).
        sys.stderr.write("reporter:counter:os_count,bad_records,1\n")
        return
    context.write(os_name, 1)
