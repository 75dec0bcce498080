-- wrk script: contact read (GET /api/v1/contacts/{number}) over the 1000 seeded numbers.
-- Arguments after "--": API_KEY [PHONE_SET a|b] [NTHREADS]
local lib = require("lib")

setup = lib.setup
done = lib.done

local reqs, n

function init(args)
  local key = args[1] or os.getenv("BENCH_API_KEY") or ""
  local set = args[2] or "a"
  local nthreads = tonumber(args[3] or os.getenv("BENCH_THREADS") or "2")
  local mine = lib.partition(lib.phones(set), tonumber(tid) or 1, nthreads)
  local headers = { ["Authorization"] = "Bearer " .. key }
  reqs = {}
  for i, phone in ipairs(mine) do
    reqs[i] = wrk.format("GET", "/api/v1/contacts/" .. phone, headers)
  end
  n = 0
end

function request()
  n = n + 1
  return reqs[(n - 1) % #reqs + 1]
end
