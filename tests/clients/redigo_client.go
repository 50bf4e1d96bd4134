// redigo (Debian golang-github-gomodule-redigo-dev, RESP2 only): every family,
// pub/sub, MULTI/EXEC, a pipeline of thousands, Lua (redis.Script: EVALSHA then
// EVAL), CLIENT SETNAME at connect (DialClientName), READONLY, HELLO 2, and
// inline commands written on the net.Conn that redigo then reads replies from.
//
// Built offline against Debian's GOPATH source (see test_clients.py):
//   GO111MODULE=off GOPATH=/usr/share/gocode go build -o redigo_client redigo_client.go
// usage: redigo_client HOST PORT   (prints the transcript; exit 1 on any mismatch)
package main

import (
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/gomodule/redigo/redis"
)

const wrongType = "WRONGTYPE Operation against a key holding the wrong kind of value"

// show renders a reply keeping the type redigo handed us.
func show(v interface{}, err error) string {
	if err != nil {
		if e, ok := err.(redis.Error); ok {
			return "Error(" + string(e) + ")"
		}
		return "ClientError(" + err.Error() + ")"
	}
	switch x := v.(type) {
	case nil:
		return "nil"
	case []byte:
		return fmt.Sprintf("%q", string(x))
	case string:
		return "status:" + x
	case int64:
		return fmt.Sprintf("int:%d", x)
	case redis.Error:
		return "Error(" + string(x) + ")"
	case []interface{}:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = show(e, nil)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	default:
		return fmt.Sprintf("%T:%v", v, v)
	}
}

type transcript struct {
	program  string
	failures int
}

func (t *transcript) seen(label, rendering string) {
	fmt.Printf("%s => %s\n", label, rendering)
}

// check compares the rendering of a reply with the expected rendering.
func (t *transcript) check(label string, v interface{}, err error, want string) {
	got := show(v, err)
	t.seen(label, got)
	if got != want {
		t.failures++
		fmt.Fprintf(os.Stderr, "%s: MISMATCH at %s: got %s, expected %s\n", t.program, label, got, want)
	}
}

// prefix checks the start of the rendering (the rest is compared with real Redis's).
func (t *transcript) prefix(label string, v interface{}, err error, want string) {
	got := show(v, err)
	t.seen(label, got)
	if !strings.HasPrefix(got, want) {
		t.failures++
		fmt.Fprintf(os.Stderr, "%s: MISMATCH at %s: got %s, expected %s...\n", t.program, label, got, want)
	}
}

func (t *transcript) truth(label string, ok bool) {
	t.check(label, fmt.Sprint(ok), nil, "status:true")
}

func main() {
	addr := net.JoinHostPort(os.Args[1], os.Args[2])
	t := &transcript{program: "redigo 1.8"}
	c, err := redis.Dial("tcp", addr, redis.DialClientName("hakv-redigo"),
		redis.DialReadTimeout(10*time.Second))
	if err != nil {
		fmt.Fprintln(os.Stderr, "redigo: cannot connect:", err)
		os.Exit(2)
	}
	defer c.Close()
	do := func(label, want string, cmd string, args ...interface{}) interface{} {
		v, err := c.Do(cmd, args...)
		t.check(label, v, err, want)
		return v
	}

	do("flushdb", "status:OK", "FLUSHDB")
	do("client getname (set at connect)", `"hakv-redigo"`, "CLIENT", "GETNAME")
	do("readonly", "Error(ERR This instance has cluster support disabled)", "READONLY")
	v, err := c.Do("CLIENT", "SETINFO", "LIB-NAME", "redigo")
	t.seen("client setinfo", show(v, err))
	v, err = c.Do("HELLO", "2")
	t.prefix("hello 2", v, err, `["server", "redis", "version", `)

	// strings
	do("set", "status:OK", "SET", "g:s", "v")
	do("set nx", "nil", "SET", "g:s", "v", "NX")
	do("get", `"v"`, "GET", "g:s")
	do("incrby", "int:-5", "INCRBY", "g:n", -5)
	do("incrbyfloat", `"-4.5"`, "INCRBYFLOAT", "g:n", 0.5)
	do("incrbyfloat exp", `"1000"`, "INCRBYFLOAT", "g:f", "1e3")
	do("mget", `["v", nil, "-4.5"]`, "MGET", "g:s", "g:none", "g:n")
	do("getset", `"v"`, "GETSET", "g:s", "w")
	do("setrange", "int:6", "SETRANGE", "g:s", 5, "!")
	do("get nul padded", `"w\x00\x00\x00\x00!"`, "GET", "g:s")
	do("incr text", "Error(ERR value is not an integer or out of range)", "INCR", "g:s")
	do("bitcount", "int:8", "BITCOUNT", "g:s")

	// hashes
	do("hset", "int:3", "HSET", "g:h", "a", 1, "b", 2, "c", 3)
	do("hgetall", `["a", "1", "b", "2", "c", "3"]`, "HGETALL", "g:h")
	m, err := redis.StringMap(c.Do("HGETALL", "g:h"))
	t.check("StringMap", fmt.Sprint(m), err, "status:map[a:1 b:2 c:3]")
	do("hincrby", "int:11", "HINCRBY", "g:h", "a", 10)
	do("hdel", "int:2", "HDEL", "g:h", "b", "c")
	do("hget on string", "Error("+wrongType+")", "HGET", "g:s", "x")

	// lists
	do("rpush", "int:4", "RPUSH", "g:l", 1, 2, 3, 4)
	ints, err := redis.Ints(c.Do("LRANGE", "g:l", 0, -1))
	t.check("lrange as Ints", fmt.Sprint(ints), err, "status:[1 2 3 4]")
	do("lpop count", `["1", "2"]`, "LPOP", "g:l", 2)
	do("blmove", `"4"`, "BLMOVE", "g:l", "g:l2", "RIGHT", "LEFT", 1)
	do("lrange rest", `["3"]`, "LRANGE", "g:l", 0, -1)
	do("blpop timeout", "nil", "BLPOP", "g:empty", "0.1")

	// sets
	do("sadd", "int:3", "SADD", "g:set", "p", "q", "r")
	members, err := redis.Strings(c.Do("SMEMBERS", "g:set"))
	sort.Strings(members)
	t.check("smembers sorted", fmt.Sprint(members), err, "status:[p q r]")
	do("sismember", "int:1", "SISMEMBER", "g:set", "q")
	do("smismember", "[int:1, int:0]", "SMISMEMBER", "g:set", "r", "zz")
	do("scard", "int:3", "SCARD", "g:set")

	// sorted sets
	do("zadd", "int:3", "ZADD", "g:z", 1, "a", 2, "b", 3.5, "c")
	do("zrange withscores", `["a", "1", "b", "2", "c", "3.5"]`, "ZRANGE", "g:z", 0, -1, "WITHSCORES")
	f, err := redis.Float64(c.Do("ZSCORE", "g:z", "c"))
	t.check("zscore Float64", fmt.Sprint(f), err, "status:3.5")
	do("zrangebyscore", `["b", "c"]`, "ZRANGEBYSCORE", "g:z", "(1", 10)
	do("zrevrank", "int:0", "ZREVRANK", "g:z", "c")
	do("zincrby", `"-1"`, "ZINCRBY", "g:z", -2, "a")
	do("zrandmember count 0", "[]", "ZRANDMEMBER", "g:z", 0)
	do("zadd gt lt", "Error(ERR GT, LT, and/or NX options at the same time are not compatible)",
		"ZADD", "g:z", "GT", "LT", 1, "a")

	// expiry
	do("set ex", "status:OK", "SET", "g:e", "v", "EX", 100)
	ttl, err := redis.Int(c.Do("TTL", "g:e"))
	t.truth("ttl in (95,100]", err == nil && ttl > 95 && ttl <= 100)
	do("pexpire short", "int:1", "PEXPIRE", "g:e", 50)
	time.Sleep(200 * time.Millisecond)
	do("expired", "nil", "GET", "g:e")
	do("expire bad", "Error(ERR value is not an integer or out of range)", "EXPIRE", "g:s", "soon")

	// pub/sub
	sc, err := redis.Dial("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "redigo: cannot connect:", err)
		os.Exit(2)
	}
	psc := redis.PubSubConn{Conn: sc}
	psc.Subscribe("g:chan")
	psc.PSubscribe("g:*")
	for i := 0; i < 2; i++ {
		switch n := psc.Receive().(type) {
		case redis.Subscription:
			t.seen("confirmation", fmt.Sprintf("%s %s %d", n.Kind, n.Channel, n.Count))
		default:
			t.check("confirmation", fmt.Sprint(n), nil, "a subscription")
		}
	}
	do("publish", "int:2", "PUBLISH", "g:chan", "payload")
	var msgs []string
	for len(msgs) < 2 {
		switch n := psc.Receive().(type) {
		case redis.Message:
			msgs = append(msgs, fmt.Sprintf("%s|%s|%s", n.Pattern, n.Channel, n.Data))
		case error:
			msgs = append(msgs, "error "+n.Error())
		}
	}
	t.check("messages", strings.Join(msgs, " "), nil, "status:|g:chan|payload g:*|g:chan|payload")
	psc.Ping("in-sub")
	switch n := psc.Receive().(type) {
	case redis.Pong:
		t.check("ping while subscribed", n.Data, nil, "status:in-sub")
	default:
		t.check("ping while subscribed", fmt.Sprint(n), nil, "a pong")
	}
	psc.Unsubscribe()
	psc.PUnsubscribe()
	for i := 0; i < 2; i++ {
		if n, ok := psc.Receive().(redis.Subscription); ok {
			t.seen("unsubscribed", fmt.Sprintf("%s %s %d", n.Kind, n.Channel, n.Count))
		}
	}
	sc.Close()

	// MULTI/EXEC
	c.Send("MULTI")
	c.Send("SET", "g:tx", 1)
	c.Send("INCR", "g:tx")
	c.Send("LPUSH", "g:tx", "x")
	do("exec", "[status:OK, int:2, Error("+wrongType+")]", "EXEC")
	c.Send("MULTI")
	c.Send("SET", "g:tx")
	// Do returns the first error among the pending replies: the queueing error
	do("exec abort", "Error(ERR wrong number of arguments for 'set' command)", "EXEC")
	do("watch", "status:OK", "WATCH", "g:w")
	other, _ := redis.Dial("tcp", addr)
	other.Do("SET", "g:w", "theirs")
	other.Close()
	c.Send("MULTI")
	c.Send("SET", "g:w", "mine")
	do("watch abort", "nil", "EXEC")

	// a pipeline of a few thousand commands
	for i := 0; i < 3000; i++ {
		c.Send("RPUSH", "g:pl", i)
	}
	c.Send("LINDEX", "g:pl", -1)
	c.Flush()
	ok := true
	for i := 0; i < 3000; i++ {
		n, err := redis.Int(c.Receive())
		ok = ok && err == nil && n == i+1
	}
	t.truth("pipelined rpush", ok)
	last, err := c.Receive()
	t.check("pipelined lindex", last, err, `"2999"`)

	// Lua through redis.Script (EVALSHA, then EVAL on NOSCRIPT)
	script := redis.NewScript(1, "return {KEYS[1], ARGV[1], redis.call('llen', KEYS[1])}")
	v, err = script.Do(c, "g:pl", "x")
	t.check("script do", v, err, `["g:pl", "x", int:3000]`)
	v, err = script.Do(c, "g:pl", "y")
	t.check("script do again", v, err, `["g:pl", "y", int:3000]`)
	v, err = c.Do("EVAL", "return nosuch", 0)
	t.prefix("eval error", v, err, "Error(ERR ")

	// inline commands written raw; redigo reads the replies
	nc, err := net.Dial("tcp", addr)
	if err == nil {
		raw := redis.NewConn(nc, 10*time.Second, 10*time.Second)
		nc.Write([]byte("PING\r\n\r\nSET g:inline \"x y\"\r\nGET g:inline\r\nEXISTS g:inline g:s\n"))
		var replies []string
		for i := 0; i < 4; i++ {
			v, err := raw.Receive()
			replies = append(replies, show(v, err))
		}
		t.check("inline", strings.Join(replies, " "), nil, `status:status:PONG status:OK "x y" int:2`)
		nc.Write([]byte("*1\r\n$4\r\nPING\r\n*x\r\n"))
		v, err = raw.Receive()
		t.check("multibulk after inline", v, err, "status:PONG")
		v, err = raw.Receive()
		t.check("bad multibulk length", v, err, "Error(ERR Protocol error: invalid multibulk length)")
		raw.Close()
	}

	keys, err := redis.Strings(c.Do("KEYS", "*"))
	do("dbsize", fmt.Sprintf("int:%d", len(keys)), "DBSIZE")
	if t.failures > 0 {
		fmt.Fprintf(os.Stderr, "%s: %d mismatches\n", t.program, t.failures)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "%s: all checks passed\n", t.program)
}
