'use strict';
// bench/numbers.cjs -- issue 16: the large set of distinct valid numbers of bench/lib.lua
// (big_number), for the seeders. The area codes are read from lib.lua so the lists
// cannot drift apart.
const fs = require('node:fs');
const path = require('node:path');

const lua = fs.readFileSync(path.join(__dirname, 'lib.lua'), 'utf8');
const m = lua.match(/M\.big_areas\s*=\s*\{([^}]*)\}/);
if (!m) throw new Error('no M.big_areas in bench/lib.lua');
const AREAS = m[1].split(',').map((s) => Number(s.trim())).filter(Boolean);
const EXCHANGES = [];
for (let x = 200; x <= 999; x++) if (x % 100 !== 11 && x !== 555) EXCHANGES.push(x);
const CAPACITY = AREAS.length * EXCHANGES.length * 10000;

// Number n (0-based) as E.164.
function bigNumber(n) {
  const line = n % 10000;
  const rest = Math.floor(n / 10000);
  const ex = EXCHANGES[rest % EXCHANGES.length];
  const area = AREAS[Math.floor(rest / EXCHANGES.length) % AREAS.length];
  return `+1${area}${ex}${String(line).padStart(4, '0')}`;
}

module.exports = { bigNumber, CAPACITY };
