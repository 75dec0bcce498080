-- wrk script (issue 16): reads at random over the N seeded contacts (numbers 0 .. N-1 of
-- lib.big_number), each wrk thread with its own PRNG (each thread has its own Lua state).
-- Arguments after "--": API_KEY [KIND contact|check] [N] [SCOPE all]
--   contact: GET /api/v1/contacts/{number}
--   check:   GET /api/v1/check?to={number}&scope=SCOPE   (+ sent as %2B)
local lib = require("lib")

setup = lib.setup
done = lib.done

local kind, count, scope, head, tail

function init(args)
  local key = args[1] or os.getenv("BENCH_API_KEY") or ""
  kind = args[2] or "contact"
  count = tonumber(args[3] or "100000")
  scope = args[4] or "all"
  head, tail = lib.template("GET", { ["Authorization"] = "Bearer " .. key })
  math.randomseed(os.time() * 1000 + (tonumber(tid) or 1) * 7919 + math.floor(os.clock() * 1e6))
end

function request()
  local phone = lib.big_number(math.random(0, count - 1))
  if kind == "check" then
    return head .. "/api/v1/check?to=%2B" .. phone:sub(2) .. "&scope=" .. scope .. tail
  end
  return head .. "/api/v1/contacts/" .. phone .. tail
end
