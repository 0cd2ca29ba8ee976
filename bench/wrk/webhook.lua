-- wrk script for bench/webhook_load.py: WeChat webhook messages, each with its own MsgId.
--
-- Two ways to run it (arguments after `--` on the wrk command line):
--
--   plain <path> <body-template> <msgid-prefix> <residents>
--       Plaintext mode. <path> is the signed /wechat?signature=..&timestamp=..&nonce=..
--       (the signature only depends on token, timestamp and nonce, so Python computes
--       it once per run). <body-template> is the message XML with two %s: the openid
--       and the MsgId. Each request gets MsgId = <msgid-prefix> .. thread id (2 digits)
--       .. counter (9 digits), and openid "o_bench_" .. (counter % <residents>).
--
--   pool <file-prefix>
--       Safe mode (AES). Python wrote one file per thread, <file-prefix>.<thread id>,
--       with one request a line: "<path>\t<body>". Bodies are encrypted, so each line
--       already carries its own MsgId; the thread cycles through its lines and counts
--       how many times it had to start over (then MsgIds repeat).
--
-- At the end, done() prints one line "webhook.lua: sent=N pool=P wrapped=W" that the
-- Python side reads; the usual wrk report is printed before it.

local threads = {}
local thread_count = 0

function setup(thread)
   thread:set("id", thread_count)
   thread_count = thread_count + 1
   table.insert(threads, thread)
end

local headers = { ["Content-Type"] = "text/xml" }
local mode, path, template, prefix, residents
local paths, bodies = {}, {}
sent, pool_size, wrapped = 0, 0, 0
local position = 0

function init(args)
   mode = args[1]
   if mode == "plain" then
      path = args[2]
      template = args[3]
      prefix = args[4] .. string.format("%02d", id)
      residents = tonumber(args[5])
   elseif mode == "pool" then
      local name = args[2] .. "." .. id
      local file = assert(io.open(name, "r"), "cannot open " .. name)
      for line in file:lines() do
         local tab = string.find(line, "\t", 1, true)
         if tab then
            table.insert(paths, string.sub(line, 1, tab - 1))
            table.insert(bodies, string.sub(line, tab + 1))
         end
      end
      file:close()
      pool_size = #bodies
      assert(pool_size > 0, "empty request pool " .. name)
   else
      error("webhook.lua: first argument must be 'plain' or 'pool', not " .. tostring(mode))
   end
end

function request()
   sent = sent + 1
   if mode == "plain" then
      local openid = "o_bench_" .. (sent % residents)
      local msgid = prefix .. string.format("%09d", sent)
      return wrk.format("POST", path, headers, string.format(template, openid, msgid))
   end
   position = position + 1
   if position > pool_size then
      position = 1
      wrapped = wrapped + 1
   end
   return wrk.format("POST", paths[position], headers, bodies[position])
end

function done(summary, latency, requests)
   local total_sent, total_pool, total_wrapped = 0, 0, 0
   for _, thread in ipairs(threads) do
      total_sent = total_sent + thread:get("sent")
      total_pool = total_pool + thread:get("pool_size")
      total_wrapped = total_wrapped + thread:get("wrapped")
   end
   io.write(string.format(
      "webhook.lua: sent=%d pool=%d wrapped=%d\n", total_sent, total_pool, total_wrapped
   ))
end
