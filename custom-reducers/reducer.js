// Sum the counts of each key -- the original (2014) JavaScript reducer API.
//
// reduce(key, values) is called once per key with the list of raw value strings;
// the returned string is written followed by a newline.
module.exports = {
  reduce: function (key, values) {
    var sum = 0;
    for (var i = 0; i < values.length; i++) {
      sum += parseInt(values[i], 10);
    }
    return key + " " + sum;
  }
};
