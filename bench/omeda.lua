-- wrk script: durable Omeda opt queue submissions (issue 12), three message types each:
-- POST /webservices/rest/brand/BRAND/messageoptqueue with x-omeda-appid.
-- Arguments after "--": APPID [BRAND] [NTHREADS] [PHONE_SET a|b]
-- The account needs message types 1, 2 and 3 (run.sh creates them). Each thread cycles
-- through its own share of 1000 valid numbers; every full cycle flips the three types
-- between OUT and IN (the IN with DeleteOptOut 1, so that it replaces the OUT): every
-- request writes three consents, three ledger events and one submission, in one
-- transaction, and is answered only once that is durable.
local lib = require("lib")

setup = lib.setup
done = lib.done

local reqs, n, size, verifying

function init(args)
  local appid = args[1] or os.getenv("BENCH_API_KEY") or ""
  local brand = args[2] or "BENCH"
  local nthreads = tonumber(args[3] or os.getenv("BENCH_THREADS") or "2")
  local set = args[4] or "a"
  local mine = lib.partition(lib.phones(set), tonumber(tid) or 1, nthreads)
  local path = "/webservices/rest/brand/" .. brand .. "/messageoptqueue"
  local headers = {
    ["x-omeda-appid"] = appid,
    ["Content-Type"] = "application/json",
  }
  reqs = { {}, {} }
  for i, phone in ipairs(mine) do
    for k, status in ipairs({ 0, 1 }) do
      local body = string.format('{"SiteId":498,"SiteSessionId":"bench-%d","CountryCallingCode":1,'
        .. '"PhoneNumber":"%s","MessageOpts":[{"Status":%d,"DeleteOptOut":1,"MessageTypeId":[1,2,3]}]}',
        tonumber(tid) or 1, phone:sub(3), status)
      reqs[k][i] = wrk.format("POST", path, headers, body)
    end
  end
  size = #mine
  n = 0
  -- wrk sends nothing for its first request() call on thread 1 (script_verify_request).
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
