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
