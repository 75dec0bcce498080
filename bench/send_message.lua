-- wrk script: consent-gated send (POST /api/v1/messages) to the 1000 opted-in numbers of
-- set "a", round robin. Arguments after "--": API_KEY [NTHREADS]
local lib = require("lib")

setup = lib.setup
done = lib.done

local reqs, n

function init(args)
  local key = args[1] or os.getenv("BENCH_API_KEY") or ""
  local nthreads = tonumber(args[2] or os.getenv("BENCH_THREADS") or "2")
  local mine = lib.partition(lib.phones("a"), tonumber(tid) or 1, nthreads)
  local headers = {
    ["Authorization"] = "Bearer " .. key,
    ["Content-Type"] = "application/json",
  }
  reqs = {}
  for i, phone in ipairs(mine) do
    local body = string.format('{"to":"%s","text":"Your code is %04d. Reply STOP to opt out.","category":"transactional"}', phone, i)
    reqs[i] = wrk.format("POST", "/api/v1/messages", headers, body)
  end
  n = 0
end

function request()
  n = n + 1
  return reqs[(n - 1) % #reqs + 1]
end
