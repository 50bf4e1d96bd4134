"""One Lua 5.1 interpreter (lupa) set up as Redis 7.0's script sandbox, and
the bridge between Lua values and Redis replies.

The sandbox. Scripts run with an environment that is an empty, read-only
proxy of the allowed globals (string, table, math, coroutine, cjson,
cmsgpack, bit, struct, redis and the safe base functions: no os, io, debug,
require, loadfile, dofile, setfenv). Assigning a global or a field of a
library fails with "Attempt to modify a readonly table", reading a missing
global with "Script attempted to access nonexistent global variable 'x'", as
in Redis 7.0 (whose Lua has read-only tables built in; here proxies do it,
with rawset/setmetatable/next/pairs/ipairs/loadstring wrapped to respect
them). lupa's `python` module is not reachable from a script.

redis.call / redis.pcall, redis.log, setresp, ... and the library functions
are Python callables (C functions to Lua: `return redis.call(...)` keeps the
caller's frame, so errors know their line). An error reply from redis.call is
raised as a Python ScriptError, a library error as lua_libs.LuaRaise; Lua
sees a userdata, turned back into the error value ({err=...} or a string) by
our pcall, coroutine.resume and the error handler (`unwrap`). Scripts see
these callables as type 'function', as in Redis.

Errors. Every run is an xpcall whose handler records where the error was
raised (the first frame of the user's chunk, skipping C functions and our own
"=..." chunks), as Redis's __redis__err__handler does, so the caller gets
"ERR user_script:1: ... script: <sha>, on @user_script:1.".

A count hook calls `host.hook()` every HOOK_COUNT instructions; a string it
returns is raised as the script's error (SCRIPT KILL, the library-load
timeout), and then again at every instruction, so a script's own pcall cannot
swallow it for long.
"""

from __future__ import annotations

import hashlib
import math

import lupa.lua51 as lupa

from hakv.common import lua_libs
from hakv.common.config import REDIS_VERSION
from hakv.common.resp import Bool, ErrorReply, Raw, Verbatim, format_double

HOOK_COUNT = 100000
# Status reply tables made per call into Lua (more than one: lupa hands a
# single return value back unwrapped, not in a tuple).
STATUS_BATCH = 32
LLONG_MIN = -(2**63)

_lua_type = lupa.lua_type

_SANDBOX = r"""
local api, libs, mode, version, version_num, hook_count = ...
local G = _G
local type, error, tostring, select, setmetatable = type, error, tostring, select, setmetatable
local raw_rawset, raw_next, raw_ipairs, raw_getmetatable = rawset, next, ipairs, getmetatable
local raw_pcall, xpcall, setfenv, loadstring, raw_load = pcall, xpcall, setfenv, loadstring, load
local dbg = debug
local unpack, maxn = unpack, table.maxn

local readonly = setmetatable({}, {__mode = 'k'})   -- proxy -> the table it shows

local function deny() error('Attempt to modify a readonly table', 2) end

local function protect(real, meta)
  local proxy = {}
  setmetatable(proxy, {__index = real, __newindex = deny, __metatable = meta or false})
  readonly[proxy] = real
  return proxy
end

-- The allowed globals, behind the script environment `env`.
local backing = {}
local env = {}

local base = {'assert', 'collectgarbage', 'error', 'gcinfo', 'rawequal',
              'rawget', 'select', 'tonumber', 'tostring', 'type', 'unpack', 'xpcall',
              '_VERSION'}
for _, name in raw_ipairs(base) do backing[name] = G[name] end

-- Wrappers that keep the proxies read-only and iterable.
backing.rawset = function(t, k, v)
  if readonly[t] then error('Attempt to modify a readonly table', 0) end
  return raw_rawset(t, k, v)
end
-- Python objects are userdata whose shared metatable must stay out of reach.
backing.getmetatable = function(v)
  if type(v) == 'userdata' then return nil end
  return raw_getmetatable(v)
end
backing.setmetatable = function(t, m)
  if readonly[t] then error('Attempt to modify a readonly table', 0) end
  return setmetatable(t, m)
end
local function next_(t, k)
  local real = readonly[t]
  if real then return raw_next(real, k) end
  return raw_next(t, k)
end
backing.next = next_
backing.pairs = function(t)
  if type(t) ~= 'table' then
    error("bad argument #1 to 'pairs' (table expected, got " ..
          (t == nil and 'no value' or type(t)) .. ")", 2)
  end
  return next_, t, nil
end
backing.ipairs = function(t)
  local real = readonly[t]
  if real then return raw_ipairs(real) end
  return raw_ipairs(t)
end
backing.loadstring = function(s, name)
  local f, e = loadstring(s, name)
  if f then setfenv(f, env) end
  return f, e
end
backing.load = function(fn, name)
  local f, e = raw_load(fn, name)
  if f then setfenv(f, env) end
  return f, e
end
-- Redis 7.0's pcall hands back the message of an error table ({err=...}).
-- Errors raised in Python (redis.call, the libraries) reach Lua as userdata;
-- `errvalue` turns them back into what Lua code expects.
local errvalue = api.errvalue
local function unwrap(e)
  if type(e) == 'userdata' then
    local kind, v, counted = errvalue(e)
    -- An error a command (or redis.call's checks) already counted in INFO
    -- errorstats is not counted again as the script's reply, as in Redis.
    if kind == 1 then return {err = v, ignore_error_stats_update = counted or nil} end
    if kind == 2 then return v end
  end
  return e
end
local function pcall_result(ok, ...)
  if not ok then
    local e = unwrap((...))
    if type(e) == 'table' then
      local m = e.err
      if type(m) == 'string' or type(m) == 'number' then return false, m end
    end
    return false, e
  end
  return ok, ...
end
backing.pcall = function(...) return pcall_result(raw_pcall(...)) end
-- coroutine.resume hands back an error value too: the same unwrapping.
local coroutine_lib = {}
for k, v in raw_next, G.coroutine do coroutine_lib[k] = v end
local raw_resume = G.coroutine.resume
local function resume_result(ok, ...)
  if not ok then return false, unwrap((...)) end
  return ok, ...
end
coroutine_lib.resume = function(co, ...) return resume_result(raw_resume(co, ...)) end
backing.coroutine = protect(coroutine_lib)

for _, name in raw_ipairs({'string', 'table', 'math'}) do
  backing[name] = protect(G[name])
end
for name, lib in raw_next, libs do backing[name] = protect(lib) end
-- ("x"):upper() looks methods up through the string proxy; the string
-- metatable itself is shown read-only.
local string_meta = raw_getmetatable('')
string_meta.__index = backing.string
string_meta.__metatable = protect({__index = backing.string})

setmetatable(backing, {__index = function(_, k)
  error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
end})
backing._G = env
local env_meta = {__index = backing, __newindex = deny, __metatable = {}}
setmetatable(env, env_meta)
readonly[env] = backing

------------------------------------------------------------------ errors

local function where()
  local level = 3
  local info = dbg.getinfo(level, 'Sl')
  while info and (info.what == 'C' or info.source:sub(1, 1) == '=') do
    level = level + 1
    info = dbg.getinfo(level, 'Sl')
  end
  return info
end

local function handler(err)
  local e
  err = unwrap(err)
  if type(err) == 'table' then
    local m = err.err
    if type(m) == 'number' then m = tostring(m) end
    if type(m) ~= 'string' then m = 'ERR unknown error' end
    e = {err = m, ignore_error_stats_update = err.ignore_error_stats_update and true or nil}
  else
    e = {err = 'ERR ' .. tostring(err)}
  end
  local info = where()
  if info then
    e.source = info.source
    e.line = info.currentline
  end
  return e
end
if mode == 'eval' then backing.__redis__err__handler = handler end

------------------------------------------------------------------ redis.*

-- redis.call / redis.pcall are the Python callables themselves: a C-level
-- call keeps the caller's frame even in `return redis.call(...)` (a Lua
-- wrapper would be a tail call and lose the line of the error). call raises
-- a Python ScriptError, which reaches Lua as a userdata error (see unwrap).
local redis = {}
redis.call = api.call
redis.pcall = api.pcall

local function error_table(s)
  if s:sub(1, 1) == '-' then s = s:sub(2) end
  local code, msg = 'ERR', s
  local sp = s:find(' ', 1, true)
  if sp then code, msg = s:sub(1, sp - 1), s:sub(sp + 1) end
  msg = msg:gsub('^[\r\n]+', '')
  msg = msg:gsub('[\r\n]+$', '')
  return {err = code .. ' ' .. msg}
end
function redis.error_reply(...)
  local s = ...
  if select('#', ...) ~= 1 or type(s) ~= 'string' then
    return {err = 'ERR wrong number or type of arguments'}
  end
  return error_table(s)
end
function redis.status_reply(...)
  local s = ...
  if select('#', ...) ~= 1 or type(s) ~= 'string' then
    return {err = 'ERR wrong number or type of arguments'}
  end
  return {ok = s}
end
-- These raise errors from Python too (C functions, like Redis's own).
redis.sha1hex = api.sha1hex
redis.log = api.log
redis.setresp = api.setresp
redis.set_repl = api.set_repl
redis.acl_check_cmd = api.acl_check
if mode == 'eval' then
  function redis.replicate_commands() return true end
  function redis.breakpoint() return false end
  function redis.debug() end
end
redis.REDIS_VERSION = version
redis.REDIS_VERSION_NUM = version_num
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL =
  0, 1, 2, 2, 3
local redis_proxy = protect(redis)
backing.redis = redis_proxy

-- Functions implemented in Python are userdata to Lua; scripts see
-- 'function', as in Redis.
local python_functions = {}
for _, t in raw_next, {redis, libs.cjson, libs.cmsgpack, libs.bit, libs.struct} do
  for _, v in raw_next, t do
    if type(v) == 'userdata' and v ~= libs.cjson.null then python_functions[v] = true end
  end
end
backing.type = function(v)
  if python_functions[v] then return 'function' end
  return type(v)
end

------------------------------------------------------------------ running

-- The count hook stays on (setting it per run costs more than the idle
-- calls); after a kill it runs at every instruction until the run ends.
local pyhook = api.hook
local every_instruction = false
local function hook()
  local msg = pyhook()
  if msg then
    -- Raised in the user's code only: our own code around xpcall must be
    -- able to finish.
    if not every_instruction then
      every_instruction = true
      dbg.sethook(hook, '', 1)
    end
    local info = dbg.getinfo(2, 'S')
    if info and info.source:sub(1, 1) ~= '=' then error(msg, 0) end
  end
end
dbg.sethook(hook, '', hook_count)

-- KEYS and ARGV from the arguments after nkeys: the usual counts (no keys,
-- one key) straight from the varargs, without an intermediate table.
local function split(nkeys, ...)
  if nkeys == 1 then return {(...)}, {select(2, ...)} end
  if nkeys == 0 then return {}, {...} end
  local all = {...}
  local keys, args = {}, {}
  for i = 1, nkeys do keys[i] = all[i] end
  for i = nkeys + 1, select('#', ...) do args[i - nkeys] = all[i] end
  return keys, args
end

-- After a run: the hook back to its usual count if a kill had set it to
-- every instruction.
local function finish()
  if every_instruction then
    every_instruction = false
    dbg.sethook(hook, '', hook_count)
  end
end

local internals = {}

function internals.compile(body, name)
  local f, err = loadstring(body, name)
  if not f then return false, err end
  setfenv(f, env)
  return true, f
end

-- A run's outcome: the script's value alone when it succeeded (a single
-- value reaches Python as it is, without a tuple), (false, error table)
-- when it failed: the caller tells them apart by the tuple.
function internals.run_eval(f, nkeys, ...)
  local keys, args = split(nkeys, ...)
  -- `backing` has no __newindex: plain stores are raw ones.
  backing.KEYS = keys
  backing.ARGV = args
  local ok, r = xpcall(f, handler)
  if every_instruction then finish() end
  if ok then return r end
  return false, r
end

-- The function being called and its tables, for `call_function` (no
-- closure per call); cleared after the run.
local fcall_f, fcall_keys, fcall_args
local function call_function() return fcall_f(fcall_keys, fcall_args) end

function internals.run_function(f, nkeys, ...)
  fcall_f = f
  fcall_keys, fcall_args = split(nkeys, ...)
  local ok, r = xpcall(call_function, handler)
  fcall_f, fcall_keys, fcall_args = nil, nil, nil
  finish()
  if ok then return r end
  return false, r
end

-- Loading a function library: its code sees a `redis` with only the
-- registration API.
local pyregister = api.register
local load_redis = {}
local function register_error(msg) error(msg, 0) end
local known_args = {function_name = true, callback = true, flags = true, description = true}
function load_redis.register_function(...)
  local n = select('#', ...)
  local name, callback, flags, description
  if n == 1 then
    local t = ...
    if type(t) ~= 'table' then
      register_error('calling redis.register_function with a single argument is only ' ..
                     'applicable to Lua table (representing named arguments).')
    end
    for k in raw_next, t do
      if not known_args[k] then register_error('unknown argument given to redis.register_function') end
    end
    name, callback, flags, description = t.function_name, t.callback, t.flags, t.description
    if type(name) ~= 'string' then
      register_error('function_name argument given to redis.register_function must be a string')
    end
    if type(callback) ~= 'function' then
      register_error('callback argument given to redis.register_function must be a function')
    end
    if description ~= nil and type(description) ~= 'string' then
      register_error('description argument given to redis.register_function must be a string')
    end
    if flags ~= nil then
      if type(flags) ~= 'table' then
        register_error('flags argument to redis.register_function must be a table ' ..
                       'representing function flags')
      end
    end
  elseif n == 2 then
    name, callback = ...
    if type(name) ~= 'string' then
      register_error('first argument to redis.register_function must be a string')
    end
    if type(callback) ~= 'function' then
      register_error('second argument to redis.register_function must be a function')
    end
  else
    register_error('wrong number of arguments to redis.register_function')
  end
  local flag_list = {}
  if flags then
    for _, f in raw_ipairs(flags) do
      if type(f) ~= 'string' then register_error('unknown flag given') end
      flag_list[#flag_list + 1] = f
    end
  end
  local err = pyregister(name, callback, flag_list, description)
  if err then register_error(err) end
end
load_redis.log = redis.log
for _, k in raw_ipairs({'REDIS_VERSION', 'REDIS_VERSION_NUM', 'LOG_DEBUG', 'LOG_VERBOSE',
                        'LOG_NOTICE', 'LOG_WARNING'}) do
  load_redis[k] = redis[k]
end
local function missing(_, k)
  error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
end
setmetatable(load_redis, {__index = missing})
-- While a library loads, its code (and so the functions it creates, which
-- share its environment) sees only `redis`; afterwards the full globals.
local load_backing = setmetatable({redis = protect(load_redis)}, {__index = missing})

function internals.load_library(body)
  local f, err = loadstring(body, '@user_function')
  if not f then return false, err, true end
  setfenv(f, env)
  env_meta.__index = load_backing
  readonly[env] = load_backing
  local ok, e = xpcall(f, handler)
  finish()
  env_meta.__index = backing
  readonly[env] = backing
  return ok, e, false
end

-- What a script's reply table stands for, read in one call from Python
-- (every field Python reads itself is a round trip): a kind, then its values.
-- Fields and items are read raw (metatables ignored) in Redis's order, as
-- Redis reads them; an array ends at its first nil. Long arrays are left to
-- Python (unpack's stack limit).
local rawget = rawget
local UNPACK_MAX = 1000
function internals.classify(t)
  local v = rawget(t, 'err')
  if type(v) == 'string' then return 1, v, rawget(t, 'ignore_error_stats_update') and true end
  v = rawget(t, 'ok')
  if type(v) == 'string' then return 2, v end
  v = rawget(t, 'double')
  if type(v) == 'number' then return 3, v end
  v = rawget(t, 'big_number')
  if type(v) == 'string' then return 4, v end
  v = rawget(t, 'verbatim_string')
  if type(v) == 'table' then
    local f, s = rawget(v, 'format'), rawget(v, 'string')
    if type(f) == 'string' and type(s) == 'string' then return 5, f, s end
  end
  v = rawget(t, 'map')
  if type(v) == 'table' then return 6, v end
  v = rawget(t, 'set')
  if type(v) == 'table' then return 7, v end
  local n = 0
  while rawget(t, n + 1) ~= nil do n = n + 1 end
  if n > UNPACK_MAX then
    -- Python reads these items one by one, through metatables: give it a plain copy.
    if raw_getmetatable(t) ~= nil then
      local copy = {}
      for i = 1, n do copy[i] = rawget(t, i) end
      t = copy
    end
    return 9, n, t
  end
  return 8, n, unpack(t, 1, n)
end

-- Fresh {ok = s} tables, n at a time, for LuaEngine.status_table.
function internals.status_tables(s, n)
  local t = {}
  for i = 1, n do t[i] = {ok = s} end
  return unpack(t, 1, n)
end

function internals.memory() return math.floor(collectgarbage('count') * 1024) end
function internals.double(d) return {double = d} end
function internals.map(t) return {map = t} end
function internals.set(t) return {set = t} end
function internals.verbatim(f, s) return {verbatim_string = {format = f, string = s}} end

return internals
"""


class ScriptError(Exception):
    """Raised by redis.call for an error reply; Lua sees it as the error value.
    `counted`: already in INFO errorstats (the command's own error, or a
    check of redis.call that rejected it), not to be counted again."""

    def __init__(self, message: bytes, counted: bool = False):
        super().__init__(message)
        self.message = message
        self.counted = counted


def _error_value(exc):
    """(1, message, counted) for an error reply, (2, Lua value) for a library
    error."""
    if isinstance(exc, ScriptError):
        return 1, exc.message, exc.counted
    if isinstance(exc, lua_libs.LuaRaise):
        return 2, exc.value
    return None


def _sha1hex(*args):
    if len(args) != 1:
        raise ScriptError(b"ERR wrong number of arguments")
    s = args[0]
    if isinstance(s, (int, float)) and not isinstance(s, bool):
        s = lua_number_string(s)
    if not isinstance(s, bytes):
        s = b""
    return hashlib.sha1(s).hexdigest().encode()


def lua_number_string(n) -> bytes:
    """tostring() of a Lua number (LUA_NUMBER_FMT "%.14g")."""
    if n.__class__ is int and -(10**14) < n < 10**14:
        return b"%d" % n
    return b"%.14g" % n


def _deny_attributes(obj, name, is_setting):
    raise AttributeError("access to Python attributes is not allowed from scripts")


def version_num(version: str) -> int:
    major, minor, patch = (int(x) for x in version.split(".")[:3])
    return (major << 16) | (minor << 8) | patch


class LuaEngine:
    """A sandboxed interpreter; `host` answers the calls scripts make:
    script_call(args) -> (kind, value), hook() -> None | str, log(level, msg),
    setresp(n), set_repl(flags), acl_check(args) -> (ok, value), and
    register(name, fn, flags, description) -> None | str while loading."""

    def __init__(self, host, mode: str):
        self.host = host
        self.mode = mode  # "eval" or "function"
        lua = self.lua = lupa.LuaRuntime(
            encoding=None, unpack_returned_tuples=True, register_eval=False,
            register_builtins=False, attribute_filter=_deny_attributes)
        libs = lua_libs.install(lua)
        api = lua.table_from({
            b"call": host.script_call,
            b"pcall": host.script_pcall,
            b"errvalue": _error_value,
            b"hook": host.hook,
            b"log": host.script_log,
            b"setresp": host.setresp,
            b"set_repl": host.set_repl,
            b"acl_check": host.acl_check,
            b"register": host.register_function,
            b"sha1hex": _sha1hex,
        })
        setup = lua.compile(_SANDBOX, name="=sandbox")
        internals = setup(api, lua.table_from({k.encode(): v for k, v in libs.items()}),
                          mode.encode(), REDIS_VERSION.encode(), version_num(REDIS_VERSION),
                          HOOK_COUNT)
        # No way back to Python from the interpreter's own globals either.
        lua.execute("python = nil")
        self._compile = internals[b"compile"]
        self.run_eval = internals[b"run_eval"]
        self.run_function = internals[b"run_function"]
        self._load_library = internals[b"load_library"]
        self._memory = internals[b"memory"]
        self.mk_double = internals[b"double"]
        self.mk_map = internals[b"map"]
        self.mk_set = internals[b"set"]
        self.mk_verbatim = internals[b"verbatim"]
        self.classify = internals[b"classify"]
        self.table_from = lua.table_from
        self._status_tables = internals[b"status_tables"]
        self.status_pools: dict = {}  # status -> tables not handed out yet

    def compile(self, body: bytes, chunk: bytes):
        """(True, function) or (False, compile error message)."""
        return self._compile(body, chunk)

    def load_library(self, body: bytes):
        """Run a library's code: (ok, error table or None, is_compile_error)."""
        return self._load_library(body)

    def memory(self) -> int:
        return int(self._memory())

    def status_table(self, status: bytes):
        """A fresh {ok=status} table (SET's reply to redis.call), for the
        few statuses commands use. Made STATUS_BATCH at a time by one call
        into Lua: cheaper per table than a table_from per reply (inside a
        script, about 0.2 us less per SET). Each is handed out once, so a
        script that changes one does not change the next."""
        pool = self.status_pools.get(status)
        if not pool:
            pool = self.status_pools[status] = list(self._status_tables(status, STATUS_BATCH))
        return pool.pop()

    # -------------------------------------------------- replies -> Lua

    def to_lua(self, reply, resp3: bool):
        """A command's reply as redis.call returns it: (kind, value)."""
        cls = reply.__class__
        if cls is bytes or cls is int:
            return 0, reply
        if cls is str:
            return 1, reply.encode("utf-8", "surrogateescape")
        if reply is None:
            return 0, (None if resp3 else False)
        if cls is ErrorReply:
            return 2, error_text(reply.message)
        return 0, self._value(reply, resp3)

    def _value(self, v, resp3: bool):
        cls = v.__class__
        if cls is bytes or cls is int:
            return v
        if cls is str:
            return self.table_from({b"ok": v.encode("utf-8", "surrogateescape")})
        if v is None:
            return None if resp3 else False
        if isinstance(v, ErrorReply):
            return self.table_from({b"err": error_text(v.message)})
        if isinstance(v, (list, tuple)):
            # Arrays of strings (LRANGE, KEYS, ...) go over as they are.
            for x in v:
                if x.__class__ is not bytes:
                    return self.table_from([self._value(x, resp3) for x in v])
            return self.table_from(list(v))
        if isinstance(v, dict):
            if resp3:
                return self.mk_map(self.table_from(
                    {self._key(k, resp3): self._value(x, resp3) for k, x in v.items()}))
            flat = [y for pair in v.items() for y in pair]
            for x in flat:
                if x.__class__ is not bytes:
                    flat = [self._value(y, resp3) for y in flat]
                    break
            return self.table_from(flat)
        if isinstance(v, (set, frozenset)):
            if resp3:
                return self.mk_set(self.table_from({self._key(k, resp3): True for k in v}))
            return self.table_from([self._value(x, resp3) for x in v])
        if isinstance(v, bool):
            return v if resp3 else int(v)
        if isinstance(v, float):
            if resp3:
                return self.mk_double(v)
            return format_double(v)
        if isinstance(v, Bool):
            return v.value if resp3 else int(v.value)
        if isinstance(v, Verbatim):
            if resp3:
                return self.mk_verbatim(v.fmt, v.text)
            return v.text
        if isinstance(v, Raw):
            return self._value(parse_resp(v.data), resp3)
        if isinstance(v, int):
            return int(v)
        if isinstance(v, bytes):
            return bytes(v)
        # NullArray and anything else without a value.
        return None if resp3 else False

    def _key(self, k, resp3):
        v = self._value(k, resp3)
        return v if v is not None else False

    # -------------------------------------------------- Lua -> reply

    def to_reply(self, value, script_resp3: bool, caller_resp3: bool):
        """The script's return value as the reply to its caller."""
        cls = value.__class__
        if cls is bytes:
            return value
        if cls is int:
            return value if LLONG_MIN <= value < 2**63 else LLONG_MIN
        if value is None:
            return None
        if cls is float:
            return _truncate(value)
        if cls is bool:
            if script_resp3:
                return Bool(value)
            return 1 if value else None
        if _lua_type(value) != "table":
            return None
        classify = self.classify
        kind = classify(value)
        if kind[0] == 1:
            err = ErrorReply(kind[1].decode("utf-8", "surrogateescape"))
            if kind[2]:  # ignore_error_stats_update (redis.pcall's errors)
                err.stats_counted = True
            return err
        out: list = []
        nested = _table_reply(kind, out, caller_resp3, 0)
        if nested is not None:
            _encode(nested, out, script_resp3, caller_resp3, classify)
        return Raw(b"".join(out))


def _truncate(f: float) -> int:
    if not math.isfinite(f) or not (-9.3e18 < f < 9.3e18):
        return LLONG_MIN
    n = int(f)
    return n if LLONG_MIN <= n < 2**63 else LLONG_MIN


# Redis stops descending into nested tables when its Lua stack is full
# (about 8000 slots): an array level takes one, a map or set level three.
_STACK_LIMIT = 7995
_NIL2, _NIL3 = b"$-1\r\n", b"_\r\n"


def _encode(first, out: list, script_resp3: bool, resp3: bool, classify) -> None:
    """RESP bytes of the values still to write under a table's header
    (`first`: _table_reply's (iterator, depth)), as Redis's
    luaReplyToRedisReply writes them. Iterative (an explicit stack), so
    deeply nested tables do not hit Python's recursion limit."""
    stack = [first]
    while stack:
        items, depth = stack[-1]
        v = next(items, _END)
        if v is _END:
            stack.pop()
            continue
        cls = v.__class__
        if cls is bytes:
            out.append(b"$%d\r\n%s\r\n" % (len(v), v))
        elif cls is int or cls is float:
            out.append(b":%d\r\n" % (_truncate(v) if cls is float else (
                v if LLONG_MIN <= v < 2**63 else LLONG_MIN)))
        elif cls is bool:
            if script_resp3:
                if resp3:
                    out.append(b"#t\r\n" if v else b"#f\r\n")
                else:
                    out.append(b":1\r\n" if v else b":0\r\n")
            elif v:
                out.append(b":1\r\n")
            else:
                out.append(_NIL3 if resp3 else _NIL2)
        elif v is None or _lua_type(v) != "table":
            out.append(_NIL3 if resp3 else _NIL2)
        else:
            nested = _table_reply(classify(v), out, resp3, depth)
            if nested is not None:
                stack.append(nested)


_END = object()


def _table_reply(kind, out, resp3, depth):
    """Write a table's reply (or its header) from its classification
    (LuaEngine.classify): the (iterator, depth) of the values still to
    write for arrays, maps and sets, else None."""
    k = kind[0]
    if k == 8:  # an array, its items included
        if depth + 1 > _STACK_LIMIT:
            out.append(b"-ERR reached lua stack limit\r\n")
            return None
        out.append(b"*%d\r\n" % kind[1])
        return iter(kind[2:]), depth + 1
    if k == 1:
        out.append(b"-%s\r\n" % _one_line(kind[1]))
        return None
    if k == 2:
        out.append(b"+%s\r\n" % _one_line(kind[1]))
        return None
    if k == 3:
        text = format_double(float(kind[1]))
        out.append(b",%s\r\n" % text if resp3 else b"$%d\r\n%s\r\n" % (len(text), text))
        return None
    if k == 4:
        big = _one_line(kind[1])
        out.append(b"(%s\r\n" % big if resp3 else b"$%d\r\n%s\r\n" % (len(big), big))
        return None
    if k == 5:
        fmt, text = kind[1], kind[2]
        if resp3:
            body = fmt[:3].ljust(3) + b":" + text
            out.append(b"=%d\r\n%s\r\n" % (len(body), body))
        else:
            out.append(b"$%d\r\n%s\r\n" % (len(text), text))
        return None
    if k == 6:
        if depth + 3 > _STACK_LIMIT:
            out.append(b"-ERR reached lua stack limit\r\n")
            return None
        items = list(kind[1].items())
        out.append((b"%%%d\r\n" if resp3 else b"*%d\r\n") % (len(items) * (1 if resp3 else 2)))
        return iter([x for pair in items for x in pair]), depth + 3
    if k == 7:
        if depth + 3 > _STACK_LIMIT:
            out.append(b"-ERR reached lua stack limit\r\n")
            return None
        keys = [key for key, _ in kind[1].items()]
        out.append((b"~%d\r\n" if resp3 else b"*%d\r\n") % len(keys))
        return iter(keys), depth + 3
    # A long array (k == 9): read here, item by item.
    if depth + 1 > _STACK_LIMIT:
        out.append(b"-ERR reached lua stack limit\r\n")
        return None
    t = kind[2]
    n = kind[1]
    out.append(b"*%d\r\n" % n)
    return iter([t[i] for i in range(1, n + 1)]), depth + 1


def _one_line(b: bytes) -> bytes:
    return b.replace(b"\r", b" ").replace(b"\n", b" ")


def error_text(message: str) -> bytes:
    """An error reply as a script sees it: always 'CODE message'."""
    raw = message.encode("utf-8", "surrogateescape")
    if raw.startswith(b"-"):
        raw = raw[1:]
    if b" " not in raw:
        raw = b"ERR " + raw
    return raw.strip(b"\r\n")


def number_arg(n) -> bytes:
    """A Lua number given to redis.call, as Redis turns it into an argument."""
    if n.__class__ is int and -(2**53) < n < 2**53:
        return b"%d" % n
    f = float(n)
    if math.isnan(f):
        return b"-nan" if math.copysign(1.0, f) < 0 else b"nan"
    return b"%.17g" % f


def parse_resp(data: bytes):
    """A reply in RESP bytes back to Python values (for Raw replies)."""
    value, _ = _parse(data, 0)
    return value


def _parse(data: bytes, pos: int):
    kind = data[pos:pos + 1]
    eol = data.index(b"\r\n", pos)
    head = data[pos + 1:eol]
    pos = eol + 2
    if kind == b"+":
        return head.decode("utf-8", "surrogateescape"), pos
    if kind == b"-":
        return ErrorReply(head.decode("utf-8", "surrogateescape")), pos
    if kind == b":":
        return int(head), pos
    if kind in (b"$", b"="):
        n = int(head)
        if n < 0:
            return None, pos
        body = data[pos:pos + n]
        return (body if kind == b"$" else Verbatim(body[4:], body[:3])), pos + n + 2
    if kind == b"_":
        return None, pos
    if kind == b",":
        return float(head), pos
    if kind == b"#":
        return Bool(head == b"t"), pos
    if kind == b"(":
        return head, pos
    if kind in (b"*", b">", b"~", b"%"):
        n = int(head)
        if n < 0:
            return None, pos
        count = n * 2 if kind == b"%" else n
        items = []
        for _ in range(count):
            item, pos = _parse(data, pos)
            items.append(item)
        if kind == b"%":
            return {_hashable(items[i]): items[i + 1] for i in range(0, count, 2)}, pos
        if kind == b"~":
            return set(_hashable(x) for x in items), pos
        return items, pos
    raise ValueError("bad RESP")


def _hashable(v):
    return tuple(v) if isinstance(v, list) else v
