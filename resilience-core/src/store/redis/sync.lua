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
-- 18 open ms to re-create a lost record with (0: closed), 19 pause ms to re-create it with
-- (0: none), 20 control to re-create it with (force_open | disable | ''), 21 that control's ms
-- (0: no end), 22 max half-open wait ms (0: none), 23 number of trial reports, then per report:
-- generation, lease, outcome (s | f | n).
--
-- Returns: state (0 closed, 1 open, 2 half-open), gen, open remaining ms, pause remaining ms,
-- control (0 auto, 1 forced open, 2 disabled), control remaining ms (-1: no end), live processes,
-- processes with it open, {granted lease ids}, {instances with it open}, 1 if the record was
-- re-created in this call.
--
-- The hash is read once (HGETALL) and its fixed fields written only when they change: a round of
-- an idle breaker is one read, one heartbeat and one PEXPIRE.
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
local known_gen = tonumber(ARGV[17])
local seed_open = tonumber(ARGV[18])
local seed_pause = tonumber(ARGV[19])
local seed_ovr = ARGV[20]
local seed_ovr_ms = tonumber(ARGV[21])
local max_half_open_wait = tonumber(ARGV[22])
local nreports = tonumber(ARGV[23])

local all = redis.call('HGETALL', key)
local fixed = {}
local instances = {}
local leases = {}
for i = 1, #all, 2 do
  local name = all[i]
  local prefix = string.sub(name, 1, 2)
  if prefix == 'i:' then
    local hb, v = string.match(all[i + 1], '^(%d+):(%d)$')
    instances[#instances + 1] = {name, tonumber(hb), v}
  elseif prefix == 'l:' then
    leases[string.sub(name, 3)] = tonumber(string.match(all[i + 1], '^(%d+):'))
  else
    fixed[name] = all[i + 1]
  end
end

local dirty = false   -- the fixed fields must be written
local changed = false -- other processes must hear of it

-- Set-if-absent: a lost record (expired, or Redis restarted empty) is re-created from what this
-- process last knew; an existing one is never reset by a process that starts.
if #all == 0 then
  local gen = 0
  if known_gen >= 0 then gen = known_gen + 1 end
  fixed = {state = 'closed', gen = gen, ['until'] = 0, timeout = reset_ms, succ = 0, pause = 0,
    ovr = '', ovr_until = 0, lseq = 0}
  if seed_open > 0 then
    fixed.state = 'open'
    fixed['until'] = now + seed_open
  end
  if seed_pause > 0 then fixed.pause = now + seed_pause end
  if seed_ovr ~= '' then
    fixed.ovr = seed_ovr
    if seed_ovr_ms > 0 then fixed.ovr_until = now + seed_ovr_ms end
  end
  dirty = true
  changed = true
end

local state = fixed.state or 'closed'
local gen = tonumber(fixed.gen) or 0
local until_ms = tonumber(fixed['until']) or 0
local timeout = tonumber(fixed.timeout) or reset_ms
local succ = tonumber(fixed.succ) or 0
local pause = tonumber(fixed.pause) or 0
local ovr = fixed.ovr or ''
local ovr_until = tonumber(fixed.ovr_until) or 0

local function enter(to)
  state = to
  gen = gen + 1
  succ = 0
  dirty = true
  changed = true
end

local function clear_leases()
  for id, _ in pairs(leases) do redis.call('HDEL', key, 'l:' .. id) end
  leases = {}
end

-- A vote counts only if it was cast in the current generation: a process that has not yet seen
-- the fleet close the breaker must not open it again with its stale view.
if known_gen ~= gen then view = '0' end

-- Operator commands, then their expiry.
if command == 'force_open' or command == 'disable' then
  ovr = command
  if command_ttl > 0 then ovr_until = now + command_ttl else ovr_until = 0 end
  gen = gen + 1
  dirty = true
  changed = true
elseif command == 'clear' and ovr ~= '' then
  ovr = ''
  ovr_until = 0
  gen = gen + 1
  dirty = true
  changed = true
end
if ovr ~= '' and ovr_until > 0 and now >= ovr_until then
  ovr = ''
  ovr_until = 0
  gen = gen + 1
  dirty = true
  changed = true
end

-- A Retry-After pause is only ever extended.
if pause_ms > 0 and now + pause_ms > pause then
  pause = now + pause_ms
  dirty = true
  changed = true
end

-- Trial results: only those of the current generation, for a lease that still exists, count.
for r = 0, nreports - 1 do
  local rgen = tonumber(ARGV[24 + r * 3])
  local lease = ARGV[25 + r * 3]
  local outcome = ARGV[26 + r * 3]
  if rgen == gen and state == 'half_open' and leases[lease] then
    redis.call('HDEL', key, 'l:' .. lease)
    leases[lease] = nil
    if outcome == 's' then
      succ = succ + 1
      dirty = true
      if succ >= success_threshold then
        enter('closed')
        timeout = reset_ms
        clear_leases()
        -- The votes that opened it say nothing about the closed breaker.
        for _, i in ipairs(instances) do
          if i[3] == '1' then
            redis.call('HSET', key, i[1], i[2] .. ':0')
            i[3] = '0'
          end
        end
        view = '0'
      end
    elseif outcome == 'f' then
      timeout = math.min(math.floor(timeout * factor), max_open)
      enter('open')
      until_ms = now + timeout
      clear_leases()
    end
  end
end

-- Time: an open period ends in half-open; a half-open period that has not closed within
-- max_half_open_wait (counted from the end of the open period, which `until` still holds) opens
-- again, for the next open period of the ladder; expired trial leases free their slots.
if state == 'open' and now >= until_ms then
  enter('half_open')
end
if state == 'half_open' and max_half_open_wait > 0 and now >= until_ms + max_half_open_wait then
  timeout = math.min(math.floor(timeout * factor), max_open)
  enter('open')
  until_ms = now + timeout
  clear_leases()
end
local live_leases = 0
for id, expiry in pairs(leases) do
  if expiry <= now then redis.call('HDEL', key, 'l:' .. id) else live_leases = live_leases + 1 end
end

-- This process's heartbeat and vote, then the live processes' votes.
redis.call('HSET', key, 'i:' .. inst, now .. ':' .. view)
local live = 1
local opens = 0
local open_instances = {}
if view == '1' then
  opens = 1
  open_instances[1] = inst
end
local me = 'i:' .. inst
for _, i in ipairs(instances) do
  if i[1] ~= me then
    if i[2] + liveness >= now then
      live = live + 1
      if i[3] == '1' then
        opens = opens + 1
        open_instances[#open_instances + 1] = string.sub(i[1], 3)
      end
    elseif i[2] + 10 * liveness < now then
      redis.call('HDEL', key, i[1])
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
if state == 'half_open' and ovr == '' and wanted > 0 and live_leases < half_open_max then
  local id = redis.call('HINCRBY', key, 'lseq', 1)
  redis.call('HSET', key, 'l:' .. id, (now + lease_ms) .. ':' .. inst)
  granted[1] = id
end

if dirty then
  redis.call('HSET', key, 'state', state, 'gen', gen, 'until', until_ms, 'timeout', timeout,
    'succ', succ, 'pause', pause, 'ovr', ovr, 'ovr_until', ovr_until)
end
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
local recreated = 0
if #all == 0 then recreated = 1 end
return {code, gen, open_remaining, math.max(pause - now, 0), control, control_remaining, live,
  opens, granted, open_instances, recreated}
