# Sum the counts of each key -- the original (2014) Python reducer API.
#
# polymr calls reduce(key, values) once per key, where `values` is the list of the
# raw value strings (the text after the first space of each mapper line), and
# writes the returned string followed by a newline.


def reduce(key, values):
    return "%s %d" % (key, sum(int(v) for v in values))
