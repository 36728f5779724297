-- Streaming OpenAI Responses API with store: true, answered by an Anthropic stream (translated; the gateway files each turn).
wrk.method = "POST"
wrk.path = "/v1/responses"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench-client-key"
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
local f = assert(io.open(here .. "bodies/responses_stored_stream.json", "rb"))
wrk.body = f:read("*a")
f:close()
dofile(here .. "report.lua")
