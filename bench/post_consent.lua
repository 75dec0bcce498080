-- wrk script: durable native consent POST (POST /api/v1/consents).
-- Arguments after "--": API_KEY [PHONE_SET a|b] [FIRST_STATE opted_out|opted_in] [NTHREADS]
-- Each thread cycles through its own share of 1000 valid numbers; every full cycle flips
-- the state (opted_out <-> opted_in), so every request changes a consent and appends one
-- ledger event. run.sh seeds the measured numbers as opted_in, so the first state is opted_out.
local lib = require("lib")

setup = lib.setup
done = lib.done

local reqs, n, size, verifying

function init(args)
  local key = args[1] or os.getenv("BENCH_API_KEY") or ""
  local set = args[2] or "a"
  local first = args[3] or "opted_out"
  local second = (first == "opted_out") and "opted_in" or "opted_out"
  local nthreads = tonumber(args[4] or os.getenv("BENCH_THREADS") or "2")
  local mine = lib.partition(lib.phones(set), tonumber(tid) or 1, nthreads)
  local headers = {
    ["Authorization"] = "Bearer " .. key,
    ["Content-Type"] = "application/json",
  }
  reqs = { {}, {} }
  for i, phone in ipairs(mine) do
    for k, state in ipairs({ first, second }) do
      local body = string.format('{"phone":"%s","scope":"all","state":"%s","channel":"api"}', phone, state)
      reqs[k][i] = wrk.format("POST", "/api/v1/consents", headers, body)
    end
  end
  size = #mine
  n = 0
  -- wrk calls request() once on the first thread before the run to check the request
  -- (script_verify_request) and never sends it: do not count that call as a flip.
  verifying = (tonumber(tid) or 1) == 1
end

function request()
  if verifying then
    verifying = false
    return reqs[1][1]
  end
  local i = n % size
  local round = (n - i) / size
  n = n + 1
  return reqs[round % 2 + 1][i + 1]
end
