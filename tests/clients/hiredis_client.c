/* hiredis (Debian libhiredis-dev 0.14, RESP2 only): every family, pub/sub, MULTI/EXEC,
 * a pipeline of thousands (redisAppendCommand), Lua, READONLY, CLIENT SETNAME and
 * inline commands sent raw with redisAppendFormattedCommand.
 *
 * build: gcc -O1 -Wall -o hiredis_client hiredis_client.c -lhiredis
 * usage: hiredis_client HOST PORT   (prints the transcript; exit 1 on any mismatch)
 */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WRONGTYPE "WRONGTYPE Operation against a key holding the wrong kind of value"

static int failures = 0;

/* Appends the rendering of a reply to buf (the type hiredis handed us is kept). */
static void render(const redisReply *r, char *buf, size_t cap) {
    size_t len = strlen(buf);
    char *out = buf + len;
    size_t room = cap - len;
    if (room < 64) return;
    if (r == NULL) { snprintf(out, room, "ClientError"); return; }
    switch (r->type) {
    case REDIS_REPLY_NIL: snprintf(out, room, "nil"); break;
    case REDIS_REPLY_INTEGER: snprintf(out, room, "int:%lld", r->integer); break;
    case REDIS_REPLY_STATUS: snprintf(out, room, "status:%s", r->str); break;
    case REDIS_REPLY_ERROR: snprintf(out, room, "Error(%s)", r->str); break;
    case REDIS_REPLY_STRING: {
        size_t o = 0;
        out[o++] = '"';
        for (size_t i = 0; i < r->len && o + 8 < room; i++) {
            unsigned char c = (unsigned char)r->str[i];
            if (c >= 32 && c < 127 && c != '"' && c != '\\') out[o++] = c;
            else o += snprintf(out + o, room - o, "\\x%02x", c);
        }
        out[o++] = '"';
        out[o] = 0;
        break;
    }
    case REDIS_REPLY_ARRAY:
        strncat(buf, "[", cap - strlen(buf) - 1);
        for (size_t i = 0; i < r->elements; i++) {
            if (i) strncat(buf, ", ", cap - strlen(buf) - 1);
            render(r->element[i], buf, cap);
        }
        strncat(buf, "]", cap - strlen(buf) - 1);
        break;
    default: snprintf(out, room, "type%d", r->type);
    }
}

/* Prints `label => rendering`; a non-NULL want must equal the rendering. Frees r. */
static void check(const char *label, redisReply *r, const char *want) {
    static char got[65536];
    got[0] = 0;
    render(r, got, sizeof got);
    printf("%s => %s\n", label, got);
    if (want != NULL && strcmp(got, want) != 0) {
        failures++;
        fprintf(stderr, "hiredis: MISMATCH at %s: got %s, expected %s\n", label, got, want);
    }
    if (r) freeReplyObject(r);
}

static void truth(const char *label, int ok) {
    printf("%s => %s\n", label, ok ? "true" : "false");
    if (!ok) {
        failures++;
        fprintf(stderr, "hiredis: MISMATCH at %s\n", label);
    }
}

static redisContext *connect_to(const char *host, int port) {
    redisContext *c = redisConnect(host, port);
    if (c == NULL || c->err) {
        fprintf(stderr, "hiredis: cannot connect: %s\n", c ? c->errstr : "?");
        exit(2);
    }
    struct timeval tv = {10, 0};
    redisSetTimeout(c, tv);
    return c;
}

static redisReply *next_reply(redisContext *c) {
    void *r = NULL;
    if (redisGetReply(c, &r) != REDIS_OK) return NULL;
    return r;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: hiredis_client HOST PORT\n"); return 2; }
    const char *host = argv[1];
    int port = atoi(argv[2]);
    redisContext *c = connect_to(host, port);
    redisReply *r;

    check("flushdb", redisCommand(c, "FLUSHDB"), "status:OK");
    check("client setname", redisCommand(c, "CLIENT SETNAME hakv-hiredis"), "status:OK");
    check("client getname", redisCommand(c, "CLIENT GETNAME"), "\"hakv-hiredis\"");
    check("readonly", redisCommand(c, "READONLY"), "Error(ERR This instance has cluster support disabled)");
    check("client setinfo", redisCommand(c, "CLIENT SETINFO LIB-NAME hiredis"), NULL);
    check("cluster shards", redisCommand(c, "CLUSTER SHARDS"), "Error(ERR This instance has cluster support disabled)");
    check("cluster keyslot arity", redisCommand(c, "CLUSTER KEYSLOT"), "Error(ERR wrong number of arguments for 'cluster|keyslot' command)");
    check("module list", redisCommand(c, "MODULE LIST"), "[]");
    check("hello 2 setname", redisCommand(c, "HELLO 2 SETNAME hakv-hiredis-2"), NULL);
    check("name after hello", redisCommand(c, "CLIENT GETNAME"), "\"hakv-hiredis-2\"");

    /* strings (binary-safe arguments with %b) */
    check("set", redisCommand(c, "SET %s %b", "h:bin", "a\0b\r\n", (size_t)5), "status:OK");
    check("get", redisCommand(c, "GET h:bin"), "\"a\\x00b\\x0d\\x0a\"");
    check("strlen", redisCommand(c, "STRLEN h:bin"), "int:5");
    check("set keepttl get", redisCommand(c, "SET h:bin x KEEPTTL GET"), "\"a\\x00b\\x0d\\x0a\"");
    check("incr", redisCommand(c, "INCR h:n"), "int:1");
    check("decrby", redisCommand(c, "DECRBY h:n 11"), "int:-10");
    check("incr overflow", redisCommand(c, "INCRBY h:n 9223372036854775807"), "int:9223372036854775797");
    check("incr overflow 2", redisCommand(c, "INCRBY h:n 100"), "Error(ERR increment or decrement would overflow)");
    check("lcs", (redisCommand(c, "MSET h:a ohmytext h:b mynewtext"), redisCommand(c, "LCS h:a h:b")), "\"mytext\"");
    check("getrange", redisCommand(c, "GETRANGE h:a 0 1"), "\"oh\"");
    check("get wrong arity", redisCommand(c, "GET"), "Error(ERR wrong number of arguments for 'get' command)");

    /* hashes */
    check("hset", redisCommand(c, "HSET h:h f1 v1 f2 v2"), "int:2");
    check("hgetall", redisCommand(c, "HGETALL h:h"), "[\"f1\", \"v1\", \"f2\", \"v2\"]");
    check("hsetnx", redisCommand(c, "HSETNX h:h f1 x"), "int:0");
    check("hincrbyfloat", redisCommand(c, "HINCRBYFLOAT h:h n 1.1"), "\"1.1\"");
    check("hlen", redisCommand(c, "HLEN h:h"), "int:3");
    check("hincrby on text", redisCommand(c, "HINCRBY h:h f1 1"), "Error(ERR hash value is not an integer)");

    /* lists */
    check("lpush", redisCommand(c, "LPUSH h:l c b a"), "int:3");
    check("lrange", redisCommand(c, "LRANGE h:l 0 -1"), "[\"a\", \"b\", \"c\"]");
    check("lrange out of range", redisCommand(c, "LRANGE h:l 5 10"), "[]");
    check("linsert missing pivot", redisCommand(c, "LINSERT h:l BEFORE zz x"), "int:-1");
    check("rpoplpush", redisCommand(c, "RPOPLPUSH h:l h:l"), "\"c\"");
    check("lrange rotated", redisCommand(c, "LRANGE h:l 0 -1"), "[\"c\", \"a\", \"b\"]");
    check("brpop", redisCommand(c, "BRPOP h:none h:l 1"), "[\"h:l\", \"b\"]");
    check("lpush on set", (redisCommand(c, "SADD h:set x"), redisCommand(c, "LPUSH h:set y")), "Error(" WRONGTYPE ")");

    /* sets */
    check("sadd", redisCommand(c, "SADD h:s 1 2 3"), "int:3");
    check("smembers (intset order)", redisCommand(c, "SMEMBERS h:s"), "[\"1\", \"2\", \"3\"]");
    check("srem", redisCommand(c, "SREM h:s 2 9"), "int:1");
    check("sunion", redisCommand(c, "SUNIONSTORE h:u h:s h:set"), "int:3");
    check("scard", redisCommand(c, "SCARD h:u"), "int:3");
    check("sismember", redisCommand(c, "SISMEMBER h:u x"), "int:1");

    /* sorted sets */
    check("zadd", redisCommand(c, "ZADD h:z 10 x 20 y 30 z"), "int:3");
    check("zadd ch", redisCommand(c, "ZADD h:z CH 11 x 40 w"), "int:2");
    check("zrange byscore", redisCommand(c, "ZRANGE h:z 15 35 BYSCORE WITHSCORES"), "[\"y\", \"20\", \"z\", \"30\"]");
    check("zrank", redisCommand(c, "ZRANK h:z w"), "int:3");
    check("zscore", redisCommand(c, "ZSCORE h:z x"), "\"11\"");
    check("zpopmin count", redisCommand(c, "ZPOPMIN h:z 2"), "[\"x\", \"11\", \"y\", \"20\"]");
    check("zincrby nan", redisCommand(c, "ZINCRBY h:z nan z"), "Error(ERR value is not a valid float)");
    check("zrangestore", redisCommand(c, "ZRANGESTORE h:z2 h:z 0 -1"), "int:2");

    /* expiry */
    check("setex", redisCommand(c, "SETEX h:e 100 v"), "status:OK");
    r = redisCommand(c, "TTL h:e");
    truth("ttl in (95,100]", r && r->type == REDIS_REPLY_INTEGER && r->integer > 95 && r->integer <= 100);
    freeReplyObject(r);
    check("pexpire", redisCommand(c, "PEXPIRE h:e 50"), "int:1");
    usleep(200000);
    check("expired", redisCommand(c, "GET h:e"), "nil");
    check("ttl missing", redisCommand(c, "TTL h:e"), "int:-2");
    check("setex zero", redisCommand(c, "SETEX h:e 0 v"), "Error(ERR invalid expire time in 'setex' command)");

    /* pub/sub on a second context */
    redisContext *s = connect_to(host, port);
    check("subscribe", redisCommand(s, "SUBSCRIBE h:c1 h:c2"), "[\"subscribe\", \"h:c1\", int:1]");
    check("subscribe 2", next_reply(s), "[\"subscribe\", \"h:c2\", int:2]");
    check("publish", redisCommand(c, "PUBLISH h:c2 %b", "bin\0ary", (size_t)7), "int:1");
    check("message", next_reply(s), "[\"message\", \"h:c2\", \"bin\\x00ary\"]");
    check("get while subscribed", redisCommand(s, "GET h:a"),
          "Error(ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context)");
    check("ping while subscribed", redisCommand(s, "PING"), "[\"pong\", \"\"]");
    /* (a bare UNSUBSCRIBE answers in the order of Redis's hash table: not compared) */
    check("unsubscribe", redisCommand(s, "UNSUBSCRIBE h:c1 h:c2"), "[\"unsubscribe\", \"h:c1\", int:1]");
    check("unsubscribe 2", next_reply(s), "[\"unsubscribe\", \"h:c2\", int:0]");
    redisFree(s);

    /* MULTI/EXEC */
    check("multi", redisCommand(c, "MULTI"), "status:OK");
    check("queued", redisCommand(c, "INCR h:tx"), "status:QUEUED");
    check("queued 2", redisCommand(c, "HSET h:tx f v"), "status:QUEUED");
    check("exec", redisCommand(c, "EXEC"), "[int:1, Error(" WRONGTYPE ")]");
    check("multi 2", redisCommand(c, "MULTI"), "status:OK");
    check("queued unknown", redisCommand(c, "NOSUCH"), "Error(ERR unknown command 'NOSUCH', with args beginning with: )");
    check("exec abort", redisCommand(c, "EXEC"), "Error(EXECABORT Transaction discarded because of previous errors.)");
    check("watch inside multi", (redisCommand(c, "MULTI"), redisCommand(c, "WATCH h:tx")),
          "Error(ERR WATCH inside MULTI is not allowed)");
    check("discard", redisCommand(c, "DISCARD"), "status:OK");

    /* a pipeline of a few thousand commands */
    for (int i = 0; i < 3000; i++) redisAppendCommand(c, "HSET h:ph f%d %d", i, i);
    redisAppendCommand(c, "HLEN h:ph");
    redisAppendCommand(c, "HGET h:ph f1234");
    int ok = 1;
    for (int i = 0; i < 3000; i++) {
        r = next_reply(c);
        ok = ok && r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
        if (r) freeReplyObject(r);
    }
    truth("pipelined hset", ok);
    check("pipelined hlen", next_reply(c), "int:3000");
    check("pipelined hget", next_reply(c), "\"1234\"");

    /* Lua */
    check("eval", redisCommand(c, "EVAL %s 1 h:ph %s", "return {KEYS[1], ARGV[1], redis.call('hlen', KEYS[1]), {1, {2}}}", "a"),
          "[\"h:ph\", \"a\", int:3000, [int:1, [int:2]]]");
    check("script load", redisCommand(c, "SCRIPT LOAD %s", "return 'x'"), NULL);  /* sha1: vs Redis */
    check("eval negative numkeys", redisCommand(c, "EVAL %s -1", "return 1"), "Error(ERR Number of keys can't be negative)");
    check("eval pcall error table", redisCommand(c, "EVAL %s 0", "local ok = redis.pcall('nosuch'); return ok['err']"), NULL);

    /* inline commands, sent as they are with redisAppendFormattedCommand */
    const char *inl = "PING\r\n\r\n  ECHO   spaced  \r\nSET h:in \"q\\x41\\n\"\r\nGET h:in\n";
    redisAppendFormattedCommand(c, inl, strlen(inl));
    check("inline ping", next_reply(c), "status:PONG");
    check("inline echo", next_reply(c), "\"spaced\"");
    check("inline set escaped", next_reply(c), "status:OK");
    check("inline get", next_reply(c), "\"qA\\x0a\"");
    const char *bad = "SET k 'unterminated\r\n";
    redisAppendFormattedCommand(c, bad, strlen(bad));
    check("inline unbalanced", next_reply(c), "Error(ERR Protocol error: unbalanced quotes in request)");
    redisFree(c);

    c = connect_to(host, port);
    r = redisCommand(c, "KEYS *");
    size_t nkeys = r ? r->elements : 0;
    freeReplyObject(r);
    r = redisCommand(c, "DBSIZE");
    truth("dbsize", r && r->type == REDIS_REPLY_INTEGER && (size_t)r->integer == nkeys);
    freeReplyObject(r);
    redisFree(c);
    if (failures) {
        fprintf(stderr, "hiredis: %d mismatches\n", failures);
        return 1;
    }
    fprintf(stderr, "hiredis %d.%d.%d: all checks passed\n", HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH);
    return 0;
}
