// Count pings per operating system -- the original (2014) JavaScript mapper API.
//
// polymr calls mapper(uuid, file, js) once per valid record (`js` is the parsed
// JSON) and writes the returned "<key> <value>\n" text unchanged.
module.exports = {
  mapper: function (uuid, file, js) {
    return js.info.OS + " 1\n";
  }
};
