# redis-rb (Debian ruby-redis, RESP2): every family, pub/sub, MULTI/EXEC, a pipeline
# of thousands, Lua, CLIENT SETNAME at connect (the `id:` option), READONLY.
# usage: ruby ruby_redis.rb HOST PORT   (prints the transcript; exit 1 on any mismatch)
require "redis"
require "set"

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"

class Transcript
  def initialize(program)
    @program = program
    @failures = 0
  end

  def show(value)
    case value
    when Exception then "Error(#{value.message})"
    when ::Set then "set(" + value.map { |v| show(v) }.sort.join(", ") + ")"
    else value.inspect
    end
  end

  def seen(label, value)
    $stdout.puts "#{label} => #{show(value)}"
    $stdout.flush
  end

  # expected: a value (compared with ==) or a Proc (a predicate)
  def check(label, got, expected)
    seen(label, got)
    ok = expected.is_a?(Proc) ? expected.call(got) : got == expected
    return if ok
    @failures += 1
    $stderr.puts "#{@program}: MISMATCH at #{label}: got #{show(got)}, expected #{show(expected)}"
  end

  def done
    if @failures > 0
      $stderr.puts "#{@program}: #{@failures} mismatches"
      return 1
    end
    $stderr.puts "#{@program}: all checks passed"
    0
  end
end

# The reply, or the error the client raised (errors are replies too).
def attempt
  yield
rescue Redis::BaseError => e
  e
end

def err(text)
  ->(got) { got.is_a?(Redis::CommandError) && got.message == text }
end

host, port = ARGV[0], ARGV[1].to_i
t = Transcript.new("redis-rb #{Redis::VERSION}")
r = Redis.new(host: host, port: port, id: "hakv-ruby")

t.check("flushdb", r.flushdb, "OK")
t.check("client getname (set at connect)", r.call([:client, "getname"]), "hakv-ruby")
t.check("readonly", attempt { r.call([:readonly]) }, err("ERR This instance has cluster support disabled"))
t.seen("client setinfo", attempt { r.call([:client, "setinfo", "lib-name", "redis-rb"]) })
t.check("unknown command", attempt { r.call([:nosuch]) },
        err("ERR unknown command 'nosuch', with args beginning with:"))

# strings
t.check("set", r.set("rb:s", "v"), "OK")
t.check("get", r.get("rb:s"), "v")
t.check("set nx", r.set("rb:s", "w", nx: true), false)
t.check("setex", r.setex("rb:ex", 100, "v"), "OK")
t.check("incr", r.incr("rb:n"), 1)
t.check("incrbyfloat", r.incrbyfloat("rb:n", 1.5), 2.5)
t.check("append", r.append("rb:s", "\r\n\x00"), 4)
t.check("get binary", r.get("rb:s"), "v\r\n\x00")
t.check("mget", r.mget("rb:s", "nope"), ["v\r\n\x00", nil])
t.check("utf-8 value", (r.set("rb:u", "héllo ✓"); r.get("rb:u").force_encoding("UTF-8")), "héllo ✓")
t.check("strlen utf-8", r.strlen("rb:u"), 10)
t.check("incr non-integer", attempt { r.incr("rb:s") }, err("ERR value is not an integer or out of range"))

# hashes
t.check("mapped_hmset", r.mapped_hmset("rb:h", { "a" => "1", "b" => "2" }), "OK")
t.check("hgetall", r.hgetall("rb:h"), { "a" => "1", "b" => "2" })
t.check("hset returns added", r.hset("rb:h", "c", "3"), 1)
t.check("hmget", r.hmget("rb:h", "a", "x", "c"), ["1", nil, "3"])
t.check("hincrby", r.hincrby("rb:h", "a", -5), -4)
t.check("hdel", r.hdel("rb:h", "b"), 1)
t.check("hscan", r.hscan("rb:h", 0)[1].sort, [["a", "-4"], ["c", "3"]])

# lists
t.check("rpush", r.rpush("rb:l", %w[one two three]), 3)
t.check("lrange", r.lrange("rb:l", 0, -1), %w[one two three])
t.check("linsert after", r.linsert("rb:l", :after, "one", "1.5"), 4)
t.check("lpop", r.lpop("rb:l"), "one")
t.check("blpop", r.blpop("rb:none", "rb:l", timeout: 1), ["rb:l", "1.5"])
t.check("brpop timeout", r.brpop("rb:none", timeout: 0.1), nil)
t.check("llen", r.llen("rb:l"), 2)
t.check("rpush on hash", attempt { r.rpush("rb:h", "x") }, err(WRONGTYPE))

# sets
t.check("sadd", r.sadd("rb:set", %w[a b c]), 3)
t.check("smembers", r.smembers("rb:set").to_set, Set.new(%w[a b c]))
t.check("sismember", r.sismember("rb:set", "a"), true)
t.check("spop all", r.spop("rb:set", 3).to_set, Set.new(%w[a b c]))
t.check("set emptied", r.exists?("rb:set"), false)
t.check("sinter missing", r.sinter("rb:set", "rb:set9"), [])

# sorted sets
t.check("zadd", r.zadd("rb:z", [[1, "a"], [2, "b"], [3, "c"]]), 3)
t.check("zrange with_scores", r.zrange("rb:z", 0, -1, with_scores: true), [["a", 1.0], ["b", 2.0], ["c", 3.0]])
t.check("zrevrangebyscore", r.zrevrangebyscore("rb:z", "+inf", "(1"), %w[c b])
t.check("zscore", r.zscore("rb:z", "b"), 2.0)
t.check("zadd incr", r.zadd("rb:z", 0.5, "a", incr: true), 1.5)
t.check("zrem", r.zrem("rb:z", "c"), true)
t.check("zinterstore", r.zinterstore("rb:zi", ["rb:z", "rb:z"], aggregate: "max"), 2)
t.check("zrange zi", r.zrange("rb:zi", 0, -1, withscores: true), [["a", 1.5], ["b", 2.0]])

# expiry
t.check("ttl in (95,100]", (95..100).cover?(r.ttl("rb:ex")), true)
t.check("pexpire short", r.pexpire("rb:ex", 50), true)
sleep 0.2
t.check("expired", r.get("rb:ex"), nil)
t.check("expire missing", r.expire("rb:missing", 5), false)
t.check("ttl missing", r.ttl("rb:missing"), -2)

# pub/sub: a subscriber thread, messages published from the main connection
sub = Redis.new(host: host, port: port)
got = Queue.new
subscribed = Queue.new
listener = Thread.new do
  sub.psubscribe("rb:ch*") do |on|
    on.psubscribe { |pattern, count| subscribed << [pattern, count] }
    on.pmessage do |pattern, channel, message|
      got << [pattern, channel, message]
      sub.punsubscribe if message == "last"
    end
  end
end
t.check("psubscribe", subscribed.pop, ["rb:ch*", 1])
t.check("publish", r.publish("rb:ch1", "hello"), 1)
t.check("publish last", r.publish("rb:ch2", "last"), 1)
listener.join(5)
t.check("pmessages", [got.pop, got.pop], [["rb:ch*", "rb:ch1", "hello"], ["rb:ch*", "rb:ch2", "last"]])
t.check("numpat after punsubscribe", r.pubsub(:numpat), 0)
sub.close

# MULTI/EXEC
t.check("multi", r.multi { |tx| tx.set("rb:tx", "1"); tx.incr("rb:tx"); tx.get("rb:tx") }, ["OK", 2, "2"])
t.check("multi with a failing command",
        attempt { r.multi { |tx| tx.set("rb:tx", "x"); tx.incr("rb:tx") } },
        err("ERR value is not an integer or out of range"))
t.check("after failed multi", r.get("rb:tx"), "x")
w = Redis.new(host: host, port: port)
t.check("watch abort", w.watch("rb:w") { r.set("rb:w", "theirs"); w.multi { |tx| tx.set("rb:w", "mine") } }, nil)
t.check("discard", (r.call([:multi]); r.call([:discard])), "OK")
w.close

# a pipeline of a few thousand commands
res = r.pipelined do |p|
  3000.times { |i| p.zadd("rb:pz", i, "m#{i}") }
  p.zcard("rb:pz")
  p.zrange("rb:pz", -2, -1)
end
t.check("pipelined zadd", res[0, 3000].all? { |x| x == true }, true)
t.check("pipelined tail", res[3000..], [3000, ["m2998", "m2999"]])

# Lua
t.check("eval", r.eval("return {KEYS[1], ARGV[1], redis.call('exists', KEYS[1])}", keys: ["rb:s"], argv: ["x"]),
        ["rb:s", "x", 1])
sha = r.script(:load, "return tonumber(ARGV[1]) * 2")
t.check("script load", sha, ->(s) { s =~ /\A[0-9a-f]{40}\z/ })
t.check("evalsha", r.evalsha(sha, argv: ["21"]), 42)
t.check("script exists", r.script(:exists, [sha, "0" * 40]), [true, false])
t.check("eval runtime error", attempt { r.eval("return redis.call('hget', KEYS[1], 'f')", keys: ["rb:s"]) },
        ->(e) { e.is_a?(Redis::CommandError) && e.message.start_with?("WRONGTYPE") })
t.check("eval status table", r.eval("return {ok='DONE'}"), "DONE")
t.check("eval err table", attempt { r.eval("return {err='CUSTOM failure'}") }, err("CUSTOM failure"))

t.check("dbsize", r.dbsize, r.keys("*").size)
r.close
exit t.done
