-- Shared by the wrk scripts in bench/ (loaded with require("lib"); run.sh sets LUA_PATH).
local M = {}

-- Area codes whose 555-01XX block libphonenumber treats as valid (555-0100..0199 are
-- reserved for fiction). Set "a" is measured, set "b" is only used by warm-up runs, so a
-- warm-up never leaves the measured numbers half-way through a round of state flips.
M.area_codes = {
  a = { 646, 212, 415, 312, 617, 202, 303, 206, 213, 305 },
  b = { 718, 917, 510, 773, 857, 404, 720, 425, 310, 512 },
}

-- 1000 valid E.164 numbers: +1 AAA 555 01XX for ten area codes.
function M.phones(set)
  local out = {}
  for _, area in ipairs(M.area_codes[set] or M.area_codes.a) do
    for i = 0, 99 do
      out[#out + 1] = string.format("+1%d55501%02d", area, i)
    end
  end
  return out
end

-- issue 16: large sets of distinct valid numbers, for the realistic workloads. Number n
-- (0-based) is +1 AREA EXCHANGE LINE over these area codes (none of sets a and b, so the
-- runs above never touch them), exchanges 200..999 without N11 and 555, lines 0000..9999:
-- 20 x 790 x 10,000 = 158,000,000 numbers. bench/numbers.cjs reads this list (the seeders).
-- Numbers 0 .. N-1 are the seeded contacts; new-number runs take blocks far above them.
M.big_areas = { 201, 203, 205, 207, 208, 209, 214, 215, 216, 217, 218, 219, 224, 225, 228, 229, 231, 234, 239, 240 }
local exchanges = {}
for x = 200, 999 do
  if x % 100 ~= 11 and x ~= 555 then exchanges[#exchanges + 1] = x end
end
M.big_capacity = #M.big_areas * #exchanges * 10000

function M.big_number(n)
  local line = n % 10000
  local rest = math.floor(n / 10000)
  local ex = exchanges[rest % #exchanges + 1]
  local area = M.big_areas[math.floor(rest / #exchanges) % #M.big_areas + 1]
  return string.format("+1%d%d%04d", area, ex, line)
end

-- The request wrk.format would build for METHOD PATH, split around the path, so a script
-- can make a request for any path by concatenation (cheaper than wrk.format per request).
function M.template(method, headers, body)
  local t = wrk.format(method, "/@PATH@", headers, body)
  local head, tail = t:match("^(.-)/@PATH@(.*)$")
  return head, tail
end

-- The numbers thread `tid` (1-based) of `nthreads` uses, so no two threads touch the same
-- contact and every request of a thread flips the state of its number.
function M.partition(list, tid, nthreads)
  local out = {}
  for i = tid, #list, nthreads do
    out[#out + 1] = list[i]
  end
  return out
end

-- Gives each thread its number; call from setup(thread).
local next_tid = 1
function M.setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
end

-- One machine-readable line for run.sh (times in microseconds).
function M.done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH_RESULT requests=%d duration_us=%d bytes=%d p50_us=%d p90_us=%d p99_us=%d mean_us=%.1f max_us=%d "
      .. "connect=%d read=%d write=%d status=%d timeout=%d\n",
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end

return M
