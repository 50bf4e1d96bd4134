# Failover writer: redis-rb with its `sentinels:` option (see README.md).
require "json"
require "redis"

PROFILES = {
  # only what discovery needs (the library's defaults: 5 s timeout, 1 reconnect attempt)
  "default" => {},
  # 250 ms timeouts so a frozen/cut primary is given up on quickly; three
  # reconnect attempts 50 ms apart, each one asking the sentinels again
  "tuned" => { "timeout" => 0.25, "reconnect_attempts" => 3, "reconnect_delay" => 0.05,
               "reconnect_delay_max" => 0.05 },
}.freeze

def emit(obj)
  $stdout.write(JSON.generate(obj) + "\n")
  $stdout.flush
end

def describe(err)
  "#{err.class}: #{err.message}"
end

cfg = JSON.parse(ARGV[0])
profile = cfg.fetch("profile", "tuned")
Signal.trap("TERM") { exit 0 }
emit(ev: "start", client: "ruby-redis", version: Redis::VERSION, profile: profile,
     settings: PROFILES[profile])
options = PROFILES[profile].transform_keys(&:to_sym)
# redis-rb 4.x takes the master name from the URL's host
options[:url] = "redis://#{cfg['master']}"
options[:role] = :master
options[:sentinels] = cfg["sentinels"].map { |host, port| { host: host, port: port } }
redis = Redis.new(**options)
finish = Time.now.to_f + cfg.fetch("max_seconds", 120)
seq = 0
while Time.now.to_f < finish
  seq += 1
  line = { ev: "w", seq: seq }
  begin
    redis.set("#{cfg['prefix']}#{seq}", seq.to_s)
    line[:t] = Time.now.to_f
    line[:ok] = true
    conn = redis.connection
    line[:addr] = "#{conn[:host]}:#{conn[:port]}"
    begin
      line[:wait] = redis.call("WAIT", "1", cfg.fetch("wait_timeout_ms", 100).to_s)
    rescue StandardError => e
      line[:wait] = nil
      line[:werr] = describe(e)
    end
  rescue StandardError => e
    line[:t] = Time.now.to_f
    line[:ok] = false
    line[:err] = describe(e)
  end
  emit(line)
  sleep(cfg.fetch("interval_ms", 10) / 1000.0)
end
