"""The libraries Redis puts in its Lua sandbox besides string/table/math:
cjson, cmsgpack, bit and struct, for a lupa (Lua 5.1) runtime.

lupa's Lua 5.1 bundles none of them, so they are written here: cjson.encode
in Lua (it walks tables with `next`, so object keys come out in the same
order as in Redis, whose Lua is also 5.1), the rest in Python behind thin Lua
wrappers. Errors are raised from the wrappers with `error(msg, 2)`, so they
carry the caller's position ("user_script:1: ...") as the C libraries'
luaL_error does.

Behaviour follows Redis 7.0's bundled versions (lua-cjson 2.1.0,
lua-cmsgpack 0.4.0, LuaBitOp 1.0.2, lua-struct 0.2) for the common cases.
Known differences: cjson's encode_keep_buffer/new are accepted but have no
effect; cjson.decode accepts what strtod accepts only for decimal, hex, inf
and nan forms; struct's '!' alignment follows the documented rule without
the platform quirks of long doubles.

API: install(lua) -> {"cjson": table, "cmsgpack": table, "bit": table,
"struct": table}, the library tables built in the runtime `lua`.
"""

from __future__ import annotations

import math
import re
import struct as _struct

# ---------------------------------------------------------------- Lua side

_LUA = r"""
local type, next, tostring, error, select, pcall = type, next, tostring, error, select, pcall
local format, gsub, concat = string.format, string.gsub, table.concat
local floor, huge = math.floor, math.huge
local dbg = debug

-- luaL_where(1) as seen from a Python library function: the position of the
-- Lua code that called it ("user_script:3: "), or "" for C callers.
local function where()
  local info = dbg.getinfo(3, 'Sl')
  if info and info.what ~= 'C' and info.currentline > 0 then
    return info.short_src .. ':' .. info.currentline .. ': '
  end
  return ''
end

------------------------------------------------------------------- cjson
local cjson = {_NAME = "cjson", _VERSION = "2.1.0"}
local null = newproxy(false)
cjson.null = null
local settings = {max_depth = 1000, decode_depth = 1000, precision = 14,
                  sparse_convert = false, sparse_ratio = 2, sparse_safe = 10,
                  encode_invalid = false, decode_invalid = true}

local function fail(msg) error({cjson_error = msg}, 0) end

local escapes = {['"'] = '\\"', ['\\'] = '\\\\', ['/'] = '\\/', ['\b'] = '\\b',
                 ['\f'] = '\\f', ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t'}
for i = 0, 31 do
  local c = string.char(i)
  if not escapes[c] then escapes[c] = format('\\u%04x', i) end
end
escapes['\127'] = '\\u007f'

local function quote(s)
  return '"' .. gsub(s, '[%c"\\/]', escapes) .. '"'
end

local function number(n)
  if n ~= n or n == huge or n == -huge then
    if settings.encode_invalid == 'null' then return 'null' end
    if not settings.encode_invalid then fail('Cannot serialise number: must not be NaN or Inf') end
    if n ~= n then return 'nan' end
    return n > 0 and 'inf' or '-inf'
  end
  return format('%.' .. settings.precision .. 'g', n)
end

local function array_length(t)
  local max, items = 0, 0
  for k in next, t do
    if type(k) == 'number' and k > 0 and floor(k) == k then
      if k > max then max = k end
      items = items + 1
    else
      return -1
    end
  end
  if settings.sparse_ratio > 0 and max > items * settings.sparse_ratio
     and max > settings.sparse_safe then
    if not settings.sparse_convert then fail('Cannot serialise table: excessively sparse array') end
    return -1
  end
  return max
end

local encode_value
local function encode_table(t, depth, out)
  depth = depth + 1
  if depth > settings.max_depth then
    fail('Cannot serialise, excessive nesting (' .. depth .. ')')
  end
  local n = array_length(t)
  if n > 0 then
    out[#out + 1] = '['
    for i = 1, n do
      if i > 1 then out[#out + 1] = ',' end
      encode_value(t[i], depth, out)
    end
    out[#out + 1] = ']'
    return
  end
  out[#out + 1] = '{'
  local first = true
  for k, v in next, t do
    if not first then out[#out + 1] = ',' end
    first = false
    local kt = type(k)
    if kt == 'string' then
      out[#out + 1] = quote(k)
    elseif kt == 'number' then
      out[#out + 1] = '"' .. number(k) .. '"'
    else
      fail('Cannot serialise ' .. kt .. ': table key must be a number or string')
    end
    out[#out + 1] = ':'
    encode_value(v, depth, out)
  end
  out[#out + 1] = '}'
end

encode_value = function(v, depth, out)
  local t = type(v)
  if t == 'string' then out[#out + 1] = quote(v)
  elseif t == 'number' then out[#out + 1] = number(v)
  elseif t == 'boolean' then out[#out + 1] = v and 'true' or 'false'
  elseif t == 'nil' or v == null then out[#out + 1] = 'null'
  elseif t == 'table' then encode_table(v, depth, out)
  else fail('Cannot serialise ' .. t .. ': type not supported')
  end
end

-- (true, json) | (false, message of a cjson error) | (false, any other error)
local function encode(v)
  local out = {}
  local ok, err = pcall(encode_value, v, 0, out)
  if ok then return true, concat(out) end
  if type(err) == 'table' and err.cjson_error then return false, err.cjson_error, true end
  return false, err, false
end

local function option(name, lo, hi)
  return function(v)
    if v ~= nil then
      if type(v) ~= 'number' or v < lo or v > hi then
        error("bad argument #1 to '" .. name .. "' (expected integer between " .. lo ..
              " and " .. hi .. ")", 2)
      end
      settings[name] = v
    end
    return settings[name]
  end
end
local set_max_depth = option('max_depth', 1, 2147483647)
local set_decode_depth = option('decode_depth', 1, 2147483647)
local set_precision = option('precision', 1, 14)
function cjson.encode_max_depth(v) return set_max_depth(v) end
function cjson.decode_max_depth(v) return set_decode_depth(v) end
function cjson.encode_number_precision(v) return set_precision(v) end
function cjson.encode_keep_buffer(v) return true end
function cjson.encode_sparse_array(convert, ratio, safe)
  if convert ~= nil then settings.sparse_convert = convert and true or false end
  if ratio ~= nil then settings.sparse_ratio = ratio end
  if safe ~= nil then settings.sparse_safe = safe end
  return settings.sparse_convert, settings.sparse_ratio, settings.sparse_safe
end
function cjson.encode_invalid_numbers(v)
  if v ~= nil then settings.encode_invalid = v end
  return settings.encode_invalid
end
function cjson.decode_invalid_numbers(v)
  if v ~= nil then settings.decode_invalid = v and true or false end
  return settings.decode_invalid
end
function cjson.new() return cjson end

local cmsgpack = {_NAME = "cmsgpack", _VERSION = "lua-cmsgpack 0.4.0",
                  _COPYRIGHT = "Copyright (C) 2012, Salvatore Sanfilippo",
                  _DESCRIPTION = "MessagePack C implementation for Lua"}

return {cjson = cjson, cmsgpack = cmsgpack, bit = {}, struct = {}}, encode, where, settings
"""


class LuaRaise(Exception):
    """Raised by a library function called from Lua: `value` (a Lua string or
    table) is the error as Lua code sees it (the engine unwraps it)."""

    def __init__(self, value):
        super().__init__(value)
        self.value = value


def _b(msg) -> bytes:
    return msg if isinstance(msg, bytes) else str(msg).encode("utf-8", "replace")


def install(lua) -> dict:
    """Build the four libraries in `lua` (a lupa.lua51.LuaRuntime created with
    encoding=None and unpack_returned_tuples=True). Their functions are Python
    callables (C functions to Lua), so `return cjson.encode(x)` keeps the
    caller's frame for error positions; errors are raised as LuaRaise with
    luaL_error's "chunk:line: " prefix."""
    setup = lua.compile(_LUA, name="=lua_libs")
    libs, encode_impl, where, settings = setup()

    def expose(fn):
        def call(*args):
            r = fn(*args)
            if r[0] is True:
                return r[1:]
            raise LuaRaise(where() + _b(r[1]))
        return call

    def encode(*args):
        if len(args) != 1:
            raise LuaRaise(where() + b"bad argument #1 to 'encode' (expected 1 argument)")
        r = encode_impl(args[0])
        if r[0] is True:
            return r[1]
        if r[2]:
            raise LuaRaise(where() + _b(r[1]))
        raise LuaRaise(r[1])

    decoder = _JsonDecoder(lua)
    null = libs[b"cjson"][b"null"]

    def decode(s=None, *rest):
        if isinstance(s, (int, float)) and not isinstance(s, bool):
            s = _lua_num_str(s)
        if not isinstance(s, bytes):
            raise LuaRaise(where() + b"bad argument #1 to 'decode' (string expected, got %s)"
                           % _lua_type(s).encode())
        ok, v = decoder.decode(s, null, int(settings[b"decode_depth"]),
                               bool(settings[b"decode_invalid"]))
        if not ok:
            raise LuaRaise(where() + _b(v))
        return v

    cjson = libs[b"cjson"]
    cjson[b"encode"] = encode
    cjson[b"decode"] = decode
    mp = _MsgPack(lua)
    cmsgpack = libs[b"cmsgpack"]
    cmsgpack[b"pack"] = expose(mp.pack_all)
    for mode in ("unpack", "unpack_one", "unpack_limit"):
        cmsgpack[mode.encode()] = expose(lambda *a, _m=mode: mp.unpack(_m, *a))
    bit = libs[b"bit"]
    for name in _BIT_FUNCTIONS:
        bit[name.encode()] = expose(lambda *a, _n=name: _bit(_n, *a))
    struct = libs[b"struct"]
    struct[b"pack"] = expose(_struct_pack)
    struct[b"unpack"] = expose(_struct_unpack)
    struct[b"size"] = expose(_struct_size)
    return {name: libs[name.encode()] for name in ("cjson", "cmsgpack", "bit", "struct")}


_BIT_FUNCTIONS = ("tobit", "tohex", "bnot", "band", "bor", "bxor", "lshift", "rshift",
                  "arshift", "rol", "ror", "bswap")


def _lua_type(v) -> str:
    if v is None:
        return "nil"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, bytes):
        return "string"
    return "table" if _is_table(v) else "userdata"


def _is_table(v) -> bool:
    return type(v).__name__ == "_LuaTable"


def _lua_number(v):
    """luaL_checknumber: numbers, and strings that look like numbers."""
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, (int, float)):
        return v
    if isinstance(v, bytes):
        try:
            text = v.strip()
            if text[:2].lower() in (b"0x", b"-0x"):
                return int(text, 16)
            return float(text)
        except ValueError:
            return None
    return None


# ---------------------------------------------------------------- cjson.decode

_NUMBER = re.compile(rb"[-+]?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
                     rb"|inf(?:inity)?|nan)", re.I)
_WS = b" \t\n\r"
_ESC = {b'"'[0]: b'"', b"\\"[0]: b"\\", b"/"[0]: b"/", b"b"[0]: b"\b", b"f"[0]: b"\f",
        b"n"[0]: b"\n", b"r"[0]: b"\r", b"t"[0]: b"\t"}


class _JsonError(Exception):
    pass


class _JsonDecoder:
    """cjson.decode: a token-at-a-time parser with lua-cjson's error texts."""

    def __init__(self, lua):
        self.lua = lua

    def decode(self, text: bytes, null, max_depth: int, allow_invalid: bool):
        self.s = text
        self.pos = 0
        self.null = null
        self.max_depth = max_depth
        self.invalid = allow_invalid
        self.depth = 0
        try:
            kind, value, where = self.token()
            result = self.value(kind, value, where)
            kind, value, where = self.token()
            if kind != "T_END":
                self.fail("the end", kind, value, where)
            return True, result
        except _JsonError as exc:
            return False, str(exc)

    def fail(self, expected, kind, value, where):
        found = value if kind == "T_ERROR" else kind
        raise _JsonError("Expected %s but found %s at character %d" % (expected, found, where + 1))

    def token(self):
        s, i, n = self.s, self.pos, len(self.s)
        while i < n and s[i] in _WS:
            i += 1
        if i >= n:
            self.pos = i
            return "T_END", None, i
        c = s[i]
        single = {123: "T_OBJ_BEGIN", 125: "T_OBJ_END", 91: "T_ARR_BEGIN", 93: "T_ARR_END",
                  44: "T_COMMA", 58: "T_COLON"}.get(c)
        if single:
            self.pos = i + 1
            return single, None, i
        if c == 34:  # '"'
            return self.string(i)
        for word, kind, value in ((b"true", "T_BOOLEAN", True), (b"false", "T_BOOLEAN", False),
                                  (b"null", "T_NULL", None)):
            if s.startswith(word, i):
                self.pos = i + len(word)
                return kind, value, i
        if c == 45 or 48 <= c <= 57 or (self.invalid and self._invalid_number(i)):
            m = _NUMBER.match(s, i)
            if not m or (not self.invalid and not _plain_number(m.group())):
                self.pos = i
                return "T_ERROR", "invalid number", i
            self.pos = m.end()
            return "T_NUMBER", _to_number(m.group()), i
        self.pos = i
        return "T_ERROR", "invalid token", i

    def _invalid_number(self, i) -> bool:
        head = self.s[i:i + 4].lower()
        return head.startswith((b"inf", b"nan", b"+inf", b"+nan", b"0x"))

    def string(self, start):
        s, n = self.s, len(self.s)
        i = start + 1
        out = bytearray()
        while True:
            j = i
            while j < n and s[j] not in (34, 92):
                j += 1
            out += s[i:j]
            if j >= n:
                self.pos = n
                return "T_ERROR", "unexpected end of string", n
            if s[j] == 34:
                self.pos = j + 1
                return "T_STRING", bytes(out), start
            if j + 1 >= n:
                self.pos = n
                return "T_ERROR", "unexpected end of string", n
            esc = s[j + 1]
            if esc == 117:  # \u
                cp, used = self._unicode(j)
                if cp is None:
                    self.pos = j
                    return "T_ERROR", "invalid unicode escape code", j
                out += chr(cp).encode("utf-8", "surrogatepass")
                i = j + used
                continue
            rep = _ESC.get(esc)
            if rep is None:
                self.pos = j
                return "T_ERROR", "invalid escape code", j
            out += rep
            i = j + 2

    def _unicode(self, j):
        s = self.s
        try:
            hi = int(s[j + 2:j + 6], 16)
        except ValueError:
            return None, 0
        if len(s[j + 2:j + 6]) != 4:
            return None, 0
        if 0xD800 <= hi <= 0xDBFF:
            if s[j + 6:j + 8] != b"\\u":
                return None, 0
            try:
                lo = int(s[j + 8:j + 12], 16)
            except ValueError:
                return None, 0
            if not 0xDC00 <= lo <= 0xDFFF:
                return None, 0
            return 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00), 12
        if 0xDC00 <= hi <= 0xDFFF:
            return None, 0
        return hi, 6

    def value(self, kind, value, where):
        if kind in ("T_STRING", "T_NUMBER", "T_BOOLEAN"):
            return value
        if kind == "T_NULL":
            return self.null
        if kind == "T_OBJ_BEGIN":
            return self.obj(where)
        if kind == "T_ARR_BEGIN":
            return self.arr(where)
        self.fail("value", kind, value, where)

    def _nest(self, where):
        self.depth += 1
        if self.depth > self.max_depth:
            raise _JsonError("Found too many nested data structures (%d) at character %d"
                             % (self.depth, where + 1))

    def obj(self, where):
        self._nest(where)
        items = {}
        kind, value, at = self.token()
        if kind != "T_OBJ_END":
            while True:
                if kind != "T_STRING":
                    self.fail("object key string", kind, value, at)
                key = value
                kind, value, at = self.token()
                if kind != "T_COLON":
                    self.fail("colon", kind, value, at)
                kind, value, at = self.token()
                items[key] = self.value(kind, value, at)
                kind, value, at = self.token()
                if kind == "T_OBJ_END":
                    break
                if kind != "T_COMMA":
                    self.fail("comma or object end", kind, value, at)
                kind, value, at = self.token()
        self.depth -= 1
        return self.lua.table_from(items)

    def arr(self, where):
        self._nest(where)
        items = []
        kind, value, at = self.token()
        if kind != "T_ARR_END":
            while True:
                items.append(self.value(kind, value, at))
                kind, value, at = self.token()
                if kind == "T_ARR_END":
                    break
                if kind != "T_COMMA":
                    self.fail("comma or array end", kind, value, at)
                kind, value, at = self.token()
        self.depth -= 1
        return self.lua.table_from(items)


def _plain_number(text: bytes) -> bool:
    t = text.lower()
    return not (b"x" in t or b"inf" in t or b"nan" in t)


def _to_number(text: bytes):
    t = text.lower()
    if b"x" in t:
        sign = -1 if t.startswith(b"-") else 1
        return sign * int(t.lstrip(b"+-"), 16)
    if b"nan" in t:
        return -math.nan if not t.startswith(b"-") else math.nan  # x86's 0/0 is negative
    value = float(t)
    if value.is_integer() and abs(value) < 2**53:
        return int(value) if not (value == 0 and t.startswith(b"-")) else value
    return value


# ---------------------------------------------------------------- cmsgpack

_MAX_NESTING = 16


class _MsgPack:
    def __init__(self, lua):
        self.lua = lua

    # -- pack

    def pack_all(self, *values):
        if not values:
            return False, "bad argument #0 to 'pack' (MessagePack pack needs input.)"
        out: list = []
        for v in values:
            self._pack(v, out, 0)
        return True, b"".join(out)

    def _pack(self, v, out, level):
        if v is None:
            out.append(b"\xc0")
        elif v is True:
            out.append(b"\xc3")
        elif v is False:
            out.append(b"\xc2")
        elif isinstance(v, bytes):
            n = len(v)
            if n < 32:
                out.append(bytes((0xA0 | n,)))
            elif n <= 0xFF:
                out.append(b"\xd9" + bytes((n,)))
            elif n <= 0xFFFF:
                out.append(b"\xda" + _struct.pack(">H", n))
            else:
                out.append(b"\xdb" + _struct.pack(">I", n))
            out.append(v)
        elif isinstance(v, (int, float)):
            self._number(v, out)
        elif _is_table(v):
            if level == _MAX_NESTING:
                out.append(b"\xc0")
            else:
                self._table(v, out, level)
        else:
            out.append(b"\xc0")

    def _number(self, v, out):
        if isinstance(v, float):
            if math.isfinite(v) and v.is_integer() and -2**63 <= v < 2**63:
                v = int(v)
            else:
                f32 = _struct.unpack(">f", _struct.pack(">f", v))[0] if _fits_f32(v) else None
                if f32 is not None and (f32 == v or (math.isnan(v) and math.isnan(f32))):
                    out.append(b"\xca" + _struct.pack(">f", v))
                else:
                    out.append(b"\xcb" + _struct.pack(">d", v))
                return
        n = v
        if n >= 0:
            if n <= 127:
                out.append(bytes((n,)))
            elif n <= 0xFF:
                out.append(b"\xcc" + bytes((n,)))
            elif n <= 0xFFFF:
                out.append(b"\xcd" + _struct.pack(">H", n))
            elif n <= 0xFFFFFFFF:
                out.append(b"\xce" + _struct.pack(">I", n))
            else:
                out.append(b"\xcf" + _struct.pack(">Q", n & 0xFFFFFFFFFFFFFFFF))
        else:
            if n >= -32:
                out.append(_struct.pack(">b", n))
            elif n >= -128:
                out.append(b"\xd0" + _struct.pack(">b", n))
            elif n >= -32768:
                out.append(b"\xd1" + _struct.pack(">h", n))
            elif n >= -2147483648:
                out.append(b"\xd2" + _struct.pack(">i", n))
            else:
                out.append(b"\xd3" + _struct.pack(">q", max(n, -2**63)))

    def _table(self, t, out, level):
        items = list(t.items())
        is_array = True
        top = 0
        for k, _ in items:
            if isinstance(k, bool) or not isinstance(k, (int, float)) or k <= 0 or k != int(k):
                is_array = False
                break
            top = max(top, int(k))
        if is_array and top == len(items):
            n = len(items)
            out.append(_container_header(n, 0x90, b"\xdc", b"\xdd"))
            for i in range(1, n + 1):
                self._pack(t[i], out, level + 1)
            return
        out.append(_container_header(len(items), 0x80, b"\xde", b"\xdf"))
        for k, v in items:
            self._pack(k, out, level + 1)
            self._pack(v, out, level + 1)

    # -- unpack

    def unpack(self, mode, data=None, a=None, b=None):
        if not isinstance(data, bytes):
            if isinstance(data, (int, float)):
                data = _lua_num_str(data)
            else:
                return False, "bad argument #1 to '%s' (string expected, got %s)" % (
                    mode, _lua_type(data))
        limit, offset = 0, 0
        if mode == "unpack_one":
            limit, offset = 1, int(a or 0)
        elif mode == "unpack_limit":
            limit, offset = int(a or 0), int(b or 0)
        if offset < 0 or offset > len(data):
            return False, "Start offset %d greater than input length %d." % (offset, len(data))
        pos = offset
        values = []
        try:
            while pos < len(data) and (limit == 0 or len(values) < limit):
                v, pos = self._unpack(data, pos)
                values.append(v)
        except _Short:
            return False, "Missing bytes in input."
        except _Bad:
            return False, "Bad data format in input."
        if mode == "unpack":
            return (True, *values)
        nxt = pos if pos < len(data) else -1
        return (True, nxt, *values)

    def _take(self, data, pos, n):
        if pos + n > len(data):
            raise _Short()
        return data[pos:pos + n], pos + n

    def _unpack(self, data, pos):
        if pos >= len(data):
            raise _Short()
        c = data[pos]
        pos += 1
        if c <= 0x7F:
            return c, pos
        if c >= 0xE0:
            return c - 256, pos
        if 0xA0 <= c <= 0xBF:
            return self._take(data, pos, c & 0x1F)
        if 0x90 <= c <= 0x9F:
            return self._array(data, pos, c & 0x0F)
        if 0x80 <= c <= 0x8F:
            return self._map(data, pos, c & 0x0F)
        simple = {0xC0: None, 0xC2: False, 0xC3: True}
        if c in simple:
            return simple[c], pos
        fixed = {0xCA: ">f", 0xCB: ">d", 0xCC: ">B", 0xCD: ">H", 0xCE: ">I", 0xCF: ">Q",
                 0xD0: ">b", 0xD1: ">h", 0xD2: ">i", 0xD3: ">q"}
        if c in fixed:
            fmt = fixed[c]
            raw, pos = self._take(data, pos, _struct.calcsize(fmt))
            v = _struct.unpack(fmt, raw)[0]
            if isinstance(v, int) and abs(v) >= 2**53:
                v = float(v)
            return v, pos
        sized = {0xC4: (">B", "s"), 0xC5: (">H", "s"), 0xC6: (">I", "s"),
                 0xD9: (">B", "s"), 0xDA: (">H", "s"), 0xDB: (">I", "s"),
                 0xDC: (">H", "a"), 0xDD: (">I", "a"), 0xDE: (">H", "m"), 0xDF: (">I", "m")}
        if c in sized:
            fmt, kind = sized[c]
            raw, pos = self._take(data, pos, _struct.calcsize(fmt))
            n = _struct.unpack(fmt, raw)[0]
            if kind == "s":
                return self._take(data, pos, n)
            if kind == "a":
                return self._array(data, pos, n)
            return self._map(data, pos, n)
        raise _Bad()

    def _array(self, data, pos, n):
        items = []
        for _ in range(n):
            v, pos = self._unpack(data, pos)
            items.append(v)
        return self.lua.table_from(items), pos

    def _map(self, data, pos, n):
        items = {}
        for _ in range(n):
            k, pos = self._unpack(data, pos)
            v, pos = self._unpack(data, pos)
            if k is not None:
                items[k] = v
        return self.lua.table_from(items), pos


class _Short(Exception):
    pass


class _Bad(Exception):
    pass


def _fits_f32(v: float) -> bool:
    return math.isnan(v) or math.isinf(v) or abs(v) <= 3.4028234663852886e38


def _container_header(n, fix, b16, b32):
    if n <= 15:
        return bytes((fix | n,))
    if n <= 0xFFFF:
        return b16 + _struct.pack(">H", n)
    return b32 + _struct.pack(">I", n)


def _lua_num_str(n) -> bytes:
    if isinstance(n, int):
        return b"%d" % n
    return b"%.14g" % n


# ---------------------------------------------------------------- bit

def _tobit(x) -> int:
    if isinstance(x, float):
        if not math.isfinite(x):
            return 0
        x = round(x)  # LuaBitOp rounds through a 2^52+2^51 bias: ties to even
    x &= 0xFFFFFFFF
    return x - 0x100000000 if x & 0x80000000 else x


def _bit(name, *args):
    nums = []
    for i, a in enumerate(args):
        n = _lua_number(a)
        if n is None:
            return False, "bad argument #%d to '%s' (number expected, got %s)" % (
                i + 1, name, "no value" if a is None and i >= len(args) else _lua_type(a))
        nums.append(_tobit(n))
    need = {"tobit": 1, "bnot": 1, "bswap": 1, "tohex": 1, "band": 1, "bor": 1, "bxor": 1}.get(
        name, 2)
    if len(nums) < need:
        return False, "bad argument #%d to '%s' (number expected, got no value)" % (
            len(nums) + 1, name)
    x = nums[0] & 0xFFFFFFFF
    if name == "tobit":
        r = x
    elif name == "bnot":
        r = ~x
    elif name == "band":
        r = x
        for n in nums[1:]:
            r &= n
    elif name == "bor":
        r = x
        for n in nums[1:]:
            r |= n
    elif name == "bxor":
        r = x
        for n in nums[1:]:
            r ^= n
    elif name == "bswap":
        r = int.from_bytes(x.to_bytes(4, "little"), "big")
    elif name == "tohex":
        digits = nums[1] if len(nums) > 1 else 8
        upper = digits < 0
        digits = min(abs(digits), 8) if digits else 8
        text = "%08x" % x
        text = text[-digits:]
        return True, (text.upper() if upper else text).encode()
    else:
        s = nums[1] & 31
        if name == "lshift":
            r = x << s
        elif name == "rshift":
            r = x >> s
        elif name == "arshift":
            r = _tobit(x) >> s
        elif name == "rol":
            r = (x << s) | (x >> (32 - s))
        else:  # ror
            r = (x >> s) | (x << (32 - s))
    return True, _tobit(r)


# ---------------------------------------------------------------- struct

_MAXINTSIZE = 32
_FMT_SIZES = {"b": 1, "B": 1, "h": 2, "H": 2, "l": 8, "L": 8, "T": 8, "f": 4, "d": 8}


def _struct_items(fmt: bytes, fname: str):
    """Yield (option, size, little_endian, align) for each item of a format."""
    little = True
    maxalign = 1
    i = 0
    text = fmt.decode("latin-1")
    while i < len(text):
        opt = text[i]
        i += 1
        if opt == " ":
            continue
        if opt in "<>=":
            little = opt != ">"
            continue
        if opt == "!":
            j = i
            while j < len(text) and text[j].isdigit():
                j += 1
            maxalign = int(text[i:j]) if j > i else 8
            i = j
            continue
        size = None
        if opt in "iIc":
            j = i
            while j < len(text) and text[j].isdigit():
                j += 1
            if j > i:
                size = int(text[i:j])
            i = j
            if opt in "iI":
                if size is None:
                    size = 4
                if size > _MAXINTSIZE:
                    raise _StructError("integral size %d is larger than limit of %d"
                                       % (size, _MAXINTSIZE))
            elif size is None:
                size = 1
        elif opt in _FMT_SIZES:
            size = _FMT_SIZES[opt]
        elif opt == "x":
            size = 1
        elif opt == "s":
            size = 0
        else:
            raise _StructError("bad argument #1 to '%s' (invalid format option '%s')"
                               % (fname, opt))
        align = 1
        if opt not in "csx" and size:
            align = min(size, maxalign)
            if align & (align - 1):
                raise _StructError("bad argument #1 to '%s' (format asks for alignment not "
                                   "power of 2)" % fname)
        yield opt, size, little, align


class _StructError(Exception):
    pass


def _pad(pos, align):
    return (-pos) % align if align > 1 else 0


def _int_bytes(n: int, size: int, little: bool) -> bytes:
    raw = (n & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
    return raw if little else raw[::-1]


def _struct_pack(fmt=None, *args):
    if not isinstance(fmt, bytes):
        return False, "bad argument #1 to 'pack' (string expected, got %s)" % _lua_type(fmt)
    out = bytearray()
    argi = 0
    try:
        for opt, size, little, align in _struct_items(fmt, "pack"):
            out += b"\x00" * _pad(len(out), align)
            if opt == "x":
                out += b"\x00"
                continue
            arg = args[argi] if argi < len(args) else None
            argi += 1
            if opt in "bBhHlLTiI":
                n = _lua_number(arg)
                if n is None:
                    return False, "bad argument #%d to 'pack' (number expected, got %s)" % (
                        argi + 1, "no value" if argi > len(args) else _lua_type(arg))
                n = int(n) if math.isfinite(n) else 0
                out += _int_bytes(n, size, little)
            elif opt in "fd":
                n = _lua_number(arg)
                if n is None:
                    return False, "bad argument #%d to 'pack' (number expected, got %s)" % (
                        argi + 1, "no value" if argi > len(args) else _lua_type(arg))
                out += _struct.pack(("<" if little else ">") + opt, n)
            elif opt in "cs":
                if isinstance(arg, (int, float)) and not isinstance(arg, bool):
                    arg = _lua_num_str(arg)
                if not isinstance(arg, bytes):
                    return False, "bad argument #%d to 'pack' (string expected, got %s)" % (
                        argi + 1, "no value" if argi > len(args) else _lua_type(arg))
                if opt == "s":
                    out += arg + b"\x00"
                else:
                    n = len(arg) if size == 0 else size
                    if len(arg) < n:
                        return False, "bad argument #%d to 'pack' (string too short)" % (argi + 1)
                    out += arg[:n]
    except _StructError as exc:
        return False, str(exc)
    return True, bytes(out)


def _struct_unpack(fmt=None, data=None, init=None):
    if not isinstance(fmt, bytes):
        return False, "bad argument #1 to 'unpack' (string expected, got %s)" % _lua_type(fmt)
    if isinstance(data, (int, float)) and not isinstance(data, bool):
        data = _lua_num_str(data)
    if not isinstance(data, bytes):
        return False, "bad argument #2 to 'unpack' (string expected, got %s)" % _lua_type(data)
    pos = int(init) - 1 if init is not None else 0
    if pos < 0 or pos > len(data):
        return False, "bad argument #3 to 'unpack' (offset must be 1 or greater)"
    values: list = []
    try:
        for opt, size, little, align in _struct_items(fmt, "unpack"):
            pos += _pad(pos, align)
            if opt == "x":
                pos += 1
                continue
            if opt == "c" and size == 0:
                if not values or not isinstance(values[-1], (int, float)):
                    return False, "format 'c0' needs a previous size"
                size = int(values.pop())
            if opt == "s":
                end = data.find(b"\x00", pos)
                if end < 0:
                    return False, "bad argument #2 to 'unpack' (unfinished string in data)"
                values.append(data[pos:end])
                pos = end + 1
                continue
            if pos + size > len(data):
                return False, "bad argument #2 to 'unpack' (data string too short)"
            raw = data[pos:pos + size]
            pos += size
            if opt == "c":
                values.append(raw)
            elif opt in "fd":
                values.append(_struct.unpack(("<" if little else ">") + opt, raw)[0])
            else:
                n = int.from_bytes(raw, "little" if little else "big", signed=opt in "bhliT"
                                   and opt != "T")
                if abs(n) >= 2**53:
                    n = float(n)
                values.append(n)
    except _StructError as exc:
        return False, str(exc)
    return (True, *values, pos + 1)


def _struct_size(fmt=None):
    if not isinstance(fmt, bytes):
        return False, "bad argument #1 to 'size' (string expected, got %s)" % _lua_type(fmt)
    pos = 0
    try:
        for opt, size, _little, align in _struct_items(fmt, "size"):
            if opt == "s" or (opt == "c" and size == 0):
                return False, "bad argument #1 to 'size' (options 'c0' - 's' have undefined sizes)"
            pos += _pad(pos, align) + size
    except _StructError as exc:
        return False, str(exc)
    return True, pos
