-- wrk script: the ProTexting opt-in flow, durable (issue 10):
--   POST /v1/contacts-opt-in/create?access_token=KEY {"PhoneNumber","GroupIds":[G]}
-- Arguments after "--": API_KEY GROUP_ID [PHONE_SET a|b] [NTHREADS]
-- Every request uses a number never used before, so each one creates a contact, adds it to
-- the group, marks the group pending (one ledger event), starts a flow and queues a CTA
-- (consentd's default transport is the sink: nothing leaves the machine). The numbers are
-- valid NANP numbers built from ten area codes, exchanges 220..297 and all line numbers
-- (7.8 million per set); set "a" is measured, set "b" is for warm-up runs. The account's
-- rate_limit must be raised first (the surface's default is 60 requests per second).
local lib = require("lib")

setup = lib.setup
done = lib.done

local key, group, areas, n, nthreads, me, headers

function init(args)
  key = args[1] or os.getenv("BENCH_API_KEY") or ""
  group = args[2] or "1"
  areas = lib.area_codes[args[3] or "a"] or lib.area_codes.a
  nthreads = tonumber(args[4] or os.getenv("BENCH_THREADS") or "2")
  me = (tonumber(tid) or 1) - 1
  n = 0
  headers = { ["Content-Type"] = "application/json", ["Accept"] = "application/json" }
end

-- The i-th number of this thread: threads interleave, so no two share a number.
local function number(i)
  local idx = i * nthreads + me
  local area = areas[idx % #areas + 1]
  local rest = math.floor(idx / #areas)
  local exchange = 220 + math.floor(rest / 10000) % 78
  return string.format("1%d%03d%04d", area, exchange, rest % 10000)
end

function request()
  local body = string.format('{"PhoneNumber":"%s","GroupIds":[%s]}', number(n), group)
  n = n + 1
  return wrk.format("POST", "/v1/contacts-opt-in/create?access_token=" .. key, headers, body)
end
