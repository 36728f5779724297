-- Streaming Anthropic Messages from the client, answered by an OpenAI-kind backend (translated both ways).
wrk.method = "POST"
wrk.path = "/v1/messages"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["x-api-key"] = "sk-bench-client-key"
wrk.headers["anthropic-version"] = "2023-06-01"
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
local f = assert(io.open(here .. "bodies/translate_stream.json", "rb"))
wrk.body = f:read("*a")
f:close()
dofile(here .. "report.lua")
