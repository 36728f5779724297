-- Streaming OpenAI Chat Completions from the client, answered by an Anthropic-kind backend (translated both ways).
wrk.method = "POST"
wrk.path = "/v1/chat/completions"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench-client-key"
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
local f = assert(io.open(here .. "bodies/translate_stream_openai.json", "rb"))
wrk.body = f:read("*a")
f:close()
dofile(here .. "report.lua")
