-- One round of one process for one shared breaker, atomically. Time is Redis's own (TIME), never
-- a process's clock. KEYS[1] is the breaker's hash (rsl:v1:{cb:<service>:<operation>}).
--
-- Fields: state (closed | open | half_open), gen (the fencing generation: every change of state
-- or control makes a new one, and trial results of another generation count nothing), until (ms,
-- end of the open period), timeout (ms, the open-timeout ladder), succ (successful trials),
-- pause (ms, end of a Retry-After pause), ovr (force_open | disable | ''), ovr_until (ms, 0: no
-- end), lseq (lease ids), i:<instance> = "<heartbeat ms>:<0|1>" (that process's own view),
-- l:<lease> = "<expiry ms>:<instance>" (a fleet-wide trial slot).
--
-- ARGV: 1 instance, 2 own view (0|1), 3 quorum_min, 4 quorum_ratio, 5 reset_timeout ms,
-- 6 ladder factor, 7 max_open ms, 8 half_open_max_calls, 9 success_threshold, 10 lease ms,
-- 11 liveness ms, 12 key ttl ms, 13 leases wanted (0|1), 14 pause ms (0: none),
-- 15 command (force_open | disable | clear | ''), 16 command ttl ms (0: none),
-- 17 the shared generation this process last knew (-1: none; also its vote's generation),
-- 18 seed open remaining ms,
-- 19 number of trial reports, then per report: generation, lease, outcome (s | f | n).
--
-- Returns: state (0 closed, 1 open, 2 half-open), gen, open remaining ms, pause remaining ms,
-- control (0 auto, 1 forced open, 2 disabled), control remaining ms (-1: no end), live processes,
-- processes with it open, {granted lease ids}, {instances with it open}.
local key = KEYS[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local inst = ARGV[1]
local view = ARGV[2]
local quorum_min = tonumber(ARGV[3])
local quorum_ratio = tonumber(ARGV[4])
local reset_ms = tonumber(ARGV[5])
local factor = tonumber(ARGV[6])
local max_open = tonumber(ARGV[7])
local half_open_max = tonumber(ARGV[8])
local success_threshold = tonumber(ARGV[9])
local lease_ms = tonumber(ARGV[10])
local liveness = tonumber(ARGV[11])
local ttl = tonumber(ARGV[12])
local wanted = tonumber(ARGV[13])
local pause_ms = tonumber(ARGV[14])
local command = ARGV[15]
local command_ttl = tonumber(ARGV[16])
local seed_gen = tonumber(ARGV[17])
local seed_open = tonumber(ARGV[18])
local nreports = tonumber(ARGV[19])

local changed = false

-- Set-if-absent: a lost record (expired, or Redis restarted empty) is re-created from what this
-- process last knew; an existing one is never reset by a process that starts.
if redis.call('EXISTS', key) == 0 then
  local gen = 0
  if seed_gen >= 0 then gen = seed_gen + 1 end
  if seed_open > 0 then
    redis.call('HSET', key, 'state', 'open', 'gen', gen, 'until', now + seed_open,
      'timeout', reset_ms, 'succ', 0, 'pause', 0, 'ovr', '', 'ovr_until', 0, 'lseq', 0)
  else
    redis.call('HSET', key, 'state', 'closed', 'gen', gen, 'until', 0,
      'timeout', reset_ms, 'succ', 0, 'pause', 0, 'ovr', '', 'ovr_until', 0, 'lseq', 0)
  end
  changed = true
end

local f = redis.call('HMGET', key, 'state', 'gen', 'until', 'timeout', 'succ', 'pause', 'ovr', 'ovr_until')
local state = f[1] or 'closed'
local gen = tonumber(f[2]) or 0
local until_ms = tonumber(f[3]) or 0
local timeout = tonumber(f[4]) or reset_ms
local succ = tonumber(f[5]) or 0
local pause = tonumber(f[6]) or 0
local ovr = f[7] or ''
local ovr_until = tonumber(f[8]) or 0

-- A vote counts only if it was formed in the current generation: a process that has not yet
-- seen the fleet close the breaker must not open it again with its stale view.
if seed_gen ~= gen then view = '0' end
redis.call('HSET', key, 'i:' .. inst, now .. ':' .. view)

local function clear_leases(all)
  for i = 1, #all, 2 do
    if string.sub(all[i], 1, 2) == 'l:' then redis.call('HDEL', key, all[i]) end
  end
end

local function enter(to)
  state = to
  gen = gen + 1
  succ = 0
  changed = true
end

-- Operator commands, then their expiry.
if command == 'force_open' or command == 'disable' then
  ovr = command
  if command_ttl > 0 then ovr_until = now + command_ttl else ovr_until = 0 end
  gen = gen + 1
  changed = true
elseif command == 'clear' and ovr ~= '' then
  ovr = ''
  ovr_until = 0
  gen = gen + 1
  changed = true
end
if ovr ~= '' and ovr_until > 0 and now >= ovr_until then
  ovr = ''
  ovr_until = 0
  gen = gen + 1
  changed = true
end

-- A Retry-After pause is only ever extended.
if pause_ms > 0 and now + pause_ms > pause then
  pause = now + pause_ms
  changed = true
end

local all = redis.call('HGETALL', key)

-- Trial results: only those of the current generation, for a lease that still exists, count.
for r = 0, nreports - 1 do
  local rgen = tonumber(ARGV[20 + r * 3])
  local lease = 'l:' .. ARGV[21 + r * 3]
  local outcome = ARGV[22 + r * 3]
  if rgen == gen and state == 'half_open' and redis.call('HEXISTS', key, lease) == 1 then
    redis.call('HDEL', key, lease)
    if outcome == 's' then
      succ = succ + 1
      if succ >= success_threshold then
        enter('closed')
        timeout = reset_ms
        clear_leases(all)
        -- The views that opened it say nothing about the closed breaker.
        for i = 1, #all, 2 do
          if string.sub(all[i], 1, 2) == 'i:' then
            local hb = string.match(all[i + 1], '^(%d+):')
            redis.call('HSET', key, all[i], hb .. ':0')
          end
        end
      end
    elseif outcome == 'f' then
      timeout = math.min(math.floor(timeout * factor), max_open)
      enter('open')
      until_ms = now + timeout
      clear_leases(all)
    end
  end
end

-- Time: an open period ends in half-open; expired trial leases free their slots.
if state == 'open' and now >= until_ms then
  enter('half_open')
end
all = redis.call('HGETALL', key)
local leases = 0
local live = 0
local opens = 0
local open_instances = {}
for i = 1, #all, 2 do
  local name = all[i]
  local prefix = string.sub(name, 1, 2)
  if prefix == 'l:' then
    local expiry = tonumber(string.match(all[i + 1], '^(%d+):'))
    if expiry <= now then redis.call('HDEL', key, name) else leases = leases + 1 end
  elseif prefix == 'i:' then
    local hb, v = string.match(all[i + 1], '^(%d+):(%d)$')
    hb = tonumber(hb)
    if hb + liveness >= now then
      live = live + 1
      if v == '1' then
        opens = opens + 1
        table.insert(open_instances, string.sub(name, 3))
      end
    elseif hb + 10 * liveness < now then
      redis.call('HDEL', key, name)
    end
  end
end

-- Opening by quorum: at least quorum_min live processes and at least quorum_ratio of them;
-- quorum_min = 1 is "any process opens it for all", whatever the ratio.
if state == 'closed' and ovr == '' and opens >= quorum_min
    and (quorum_min <= 1 or opens >= quorum_ratio * live) then
  timeout = reset_ms
  enter('open')
  until_ms = now + timeout
end

-- Fleet-wide trial leases, for a process that has a call waiting to be one.
local granted = {}
if state == 'half_open' and ovr == '' and wanted > 0 and leases < half_open_max then
  local id = redis.call('HINCRBY', key, 'lseq', 1)
  redis.call('HSET', key, 'l:' .. id, (now + lease_ms) .. ':' .. inst)
  table.insert(granted, id)
end

redis.call('HSET', key, 'state', state, 'gen', gen, 'until', until_ms, 'timeout', timeout,
  'succ', succ, 'pause', pause, 'ovr', ovr, 'ovr_until', ovr_until)
local keep = ttl
if state == 'open' and until_ms - now + ttl > keep then keep = until_ms - now + ttl end
if ovr_until > 0 and ovr_until - now + ttl > keep then keep = ovr_until - now + ttl end
redis.call('PEXPIRE', key, keep)
if changed then redis.call('PUBLISH', 'rsl:v1:events', key) end

local code = 0
if state == 'open' then code = 1 elseif state == 'half_open' then code = 2 end
local open_remaining = 0
if state == 'open' then open_remaining = math.max(until_ms - now, 0) end
local control = 0
if ovr == 'force_open' then control = 1 elseif ovr == 'disable' then control = 2 end
local control_remaining = -1
if ovr_until > 0 then control_remaining = ovr_until - now end
return {code, gen, open_remaining, math.max(pause - now, 0), control, control_remaining, live,
  opens, granted, open_instances}
