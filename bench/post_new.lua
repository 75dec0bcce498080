-- wrk script (issue 16): a NEW valid number on every request, durable.
-- Arguments after "--": API_KEY [KIND consents|contacts] [FIRST] [NTHREADS]
--   consents: POST /api/v1/consents {"phone","scope":"all","state":"opted_in","channel":"api"}
--             (a new contact, its consent and one ledger event per request)
--   contacts: POST /api/v1/contacts {"phone","first_name"} (a new contact per request)
-- Request i of thread tid (1-based) uses lib.big_number(FIRST + i * NTHREADS + tid - 1), so
-- no two requests of the run share a number; the caller gives every run its own FIRST,
-- far from the seeded numbers 0 .. N-1 and from the other runs' blocks.
local lib = require("lib")

setup = lib.setup
done = lib.done

local kind, first, nthreads, me, n, path, headers

function init(args)
  local key = args[1] or os.getenv("BENCH_API_KEY") or ""
  kind = args[2] or "consents"
  first = tonumber(args[3] or "10000000")
  nthreads = tonumber(args[4] or os.getenv("BENCH_THREADS") or "2")
  me = (tonumber(tid) or 1) - 1
  n = 0
  path = "/api/v1/" .. kind
  headers = { ["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json" }
end

function request()
  local phone = lib.big_number(first + n * nthreads + me)
  n = n + 1
  local body
  if kind == "contacts" then
    body = string.format('{"phone":"%s","first_name":"Bench"}', phone)
  else
    body = string.format('{"phone":"%s","scope":"all","state":"opted_in","channel":"api"}', phone)
  end
  return wrk.format("POST", path, headers, body)
end
