-- wrk script: consent-gated send (POST /api/v1/messages), to a contact picked at random per
-- request (each wrk thread its own PRNG) among the COUNT seeded contacts of lib.big_number,
-- with the given scope. Arguments after "--": API_KEY COUNT [SCOPE all]
-- bench/smpp.sh seeds them in bulk, each opted in to its list, and gives scope=group:<list>.
local lib = require("lib")

setup = lib.setup
done = lib.done

local count, scope, headers, n

function init(args)
  local key = args[1] or os.getenv("BENCH_API_KEY") or ""
  count = tonumber(args[2] or "10000")
  scope = args[3] or "all"
  headers = {
    ["Authorization"] = "Bearer " .. key,
    ["Content-Type"] = "application/json",
  }
  n = 0
  math.randomseed(os.time() * 1000 + (tonumber(tid) or 1) * 7919 + math.floor(os.clock() * 1e6))
end

function request()
  n = n + 1
  local phone = lib.big_number(math.random(0, count - 1))
  local body = string.format(
    '{"to":"%s","text":"Your code is %04d. Reply STOP to opt out.","category":"transactional","scope":"%s"}',
    phone, n % 10000, scope)
  return wrk.format("POST", "/api/v1/messages", headers, body)
end
