'use strict';
// Reading the JSON-lines files that test processes append to while they
// run. A process may be in the middle of writing a line when the test
// looks (or be killed there), so only complete lines, the ones a newline
// ends, are parsed; a partial last line is left for the next look.

var fs = require('fs');

function parseCompleteLines(text) {
  var end = text.lastIndexOf('\n');
  if (end === -1) return [];
  return text.slice(0, end).split('\n').filter(Boolean).map(function (line) {
    return JSON.parse(line);
  });
}

// The records in file so far; [] when it does not exist yet.
function readJsonLines(file) {
  var text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (err.code === 'ENOENT') return [];
    throw err;
  }
  return parseCompleteLines(text);
}

module.exports = { readJsonLines: readJsonLines, parseCompleteLines: parseCompleteLines };
