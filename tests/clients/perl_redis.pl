#!/usr/bin/perl
# Perl Redis (Debian libredis-perl, RESP2): every family, pub/sub, MULTI/EXEC, a
# pipeline of thousands (callbacks + wait_all_responses), Lua, CLIENT SETNAME at
# connect (the `name` option), READONLY.
# usage: perl perl_redis.pl HOST PORT   (prints the transcript; exit 1 on any mismatch)
use strict;
use warnings;
use Redis;
use Time::HiRes qw(sleep);

my $WRONGTYPE = 'WRONGTYPE Operation against a key holding the wrong kind of value';
my $failures = 0;
$| = 1;

sub show {
    my ($v) = @_;
    return 'undef' unless defined $v;
    if (ref $v eq 'ARRAY') { return '[' . join(', ', map { show($_) } @$v) . ']' }
    if (ref $v eq 'HASH') { return '{' . join(', ', map { "$_: " . show($v->{$_}) } sort keys %$v) . '}' }
    (my $s = $v) =~ s/([^\x20-\x7e])/sprintf('\\x%02x', ord $1)/ge;
    return "'$s'";
}

sub seen { my ($label, $v) = @_; print "$label => " . show($v) . "\n"; }

# expected: a value (compared by rendering) or a CODE ref (a predicate)
sub check {
    my ($label, $got, $want) = @_;
    seen($label, $got);
    my $ok = ref $want eq 'CODE' ? $want->($got) : show($got) eq show($want);
    return if $ok;
    $failures++;
    print STDERR "perl Redis: MISMATCH at $label: got " . show($got) . ', expected '
        . (ref $want eq 'CODE' ? 'a predicate' : show($want)) . "\n";
}

# The reply, or the server's error text as the client surfaced it (croak "[cmd] text, at ...").
sub attempt {
    my ($code) = @_;
    my $v = eval { $code->() };
    return $v unless $@;
    my $e = $@;
    $e =~ s/^\[[^\]]*\] //;
    $e =~ s/,\s+at \S+ line \d+\.?\s*$//s;
    return "Error($e)";
}

my ($host, $port) = @ARGV;
my $server = "$host:$port";
my $r = Redis->new(server => $server, name => 'hakv-perl', reconnect => 0);

check('flushdb', $r->flushdb, 'OK');
check('client getname (set at connect)', $r->client_getname, 'hakv-perl');
check('readonly', attempt(sub { $r->readonly }), 'Error(ERR This instance has cluster support disabled)');
seen('client setinfo', attempt(sub { $r->client('setinfo', 'lib-name', 'perl-redis') }));
check('unknown command', attempt(sub { $r->nosuchcmd('a', 'b') }),
      "Error(ERR unknown command 'NOSUCHCMD', with args beginning with: 'a' 'b' )");

# strings
check('set', $r->set('pl:s', 'v'), 'OK');
check('set xx missing', $r->set('pl:none', 'v', 'XX'), undef);
check('get', $r->get('pl:s'), 'v');
check('incr', $r->incr('pl:n'), 1);
check('incrbyfloat', $r->incrbyfloat('pl:n', '1e2'), '101');
check('mget', [$r->mget('pl:s', 'pl:none')], ['v', undef]);
check('getrange', $r->getrange('pl:s', 0, 100), 'v');
check('binary', do { $r->set('pl:b', "\0\xff\r\n"); $r->get('pl:b') }, "\0\xff\r\n");
check('incr text', attempt(sub { $r->incr('pl:s') }), 'Error(ERR value is not an integer or out of range)');

# hashes
check('hset', $r->hset('pl:h', 'a', 1, 'b', 2), 2);
check('hgetall', [$r->hgetall('pl:h')], ['a', '1', 'b', '2']);
check('hincrby', $r->hincrby('pl:h', 'b', 40), 42);
check('hexists', $r->hexists('pl:h', 'a'), 1);
check('hvals', [$r->hvals('pl:h')], ['1', '42']);
check('hdel', $r->hdel('pl:h', 'a'), 1);

# lists
check('rpush', $r->rpush('pl:l', qw(a b c d)), 4);
check('lrange', [$r->lrange('pl:l', 0, -1)], [qw(a b c d)]);
check('ltrim', $r->ltrim('pl:l', 1, 2), 'OK');
check('lrange trimmed', [$r->lrange('pl:l', 0, -1)], [qw(b c)]);
check('rpop', $r->rpop('pl:l'), 'c');
check('blpop', [$r->blpop('pl:l', 1)], ['pl:l', 'b']);
check('lpop empty', $r->lpop('pl:l'), undef);
check('lpush on hash', attempt(sub { $r->lpush('pl:h', 'x') }), "Error($WRONGTYPE)");

# sets
check('sadd', $r->sadd('pl:set', qw(x y z)), 3);
check('smembers', [sort $r->smembers('pl:set')], [qw(x y z)]);
check('sismember', $r->sismember('pl:set', 'w'), 0);
check('sinter', [sort $r->sinter('pl:set', 'pl:set')], [qw(x y z)]);
check('scard', $r->scard('pl:set'), 3);

# sorted sets
check('zadd', $r->zadd('pl:z', 5, 'e', 1, 'a', 3, 'c'), 3);
check('zrange withscores', [$r->zrange('pl:z', 0, -1, 'WITHSCORES')], [qw(a 1 c 3 e 5)]);
check('zrevrangebyscore', [$r->zrevrangebyscore('pl:z', 4, 0)], [qw(c a)]);
check('zscore', $r->zscore('pl:z', 'c'), '3');
check('zlexcount', $r->zlexcount('pl:z', '-', '+'), 3);
check('zrem', $r->zrem('pl:z', 'a'), 1);
check('zadd bad', attempt(sub { $r->zadd('pl:z', 'x', 'm') }), 'Error(ERR value is not a valid float)');

# expiry
check('expire', $r->expire('pl:s', 100), 1);
my $ttl = $r->ttl('pl:s');
check('ttl in (95,100]', ($ttl > 95 && $ttl <= 100) ? 1 : 0, 1);
check('pexpire short', $r->pexpire('pl:s', 50), 1);
sleep 0.2;
check('expired', $r->exists('pl:s'), 0);
check('set exat past', do { $r->set('pl:p', 'v', 'PXAT', 1); $r->get('pl:p') }, undef);

# pub/sub
my $sub = Redis->new(server => $server, reconnect => 0);
my @got;
$sub->subscribe('pl:chan', sub { my ($message, $topic, $subscribed) = @_; push @got, [$topic, $message] });
$sub->psubscribe('pl:*', sub { my ($message, $topic, $subscribed) = @_; push @got, [$subscribed, $topic, $message] });
check('publish', $r->publish('pl:chan', 'hello'), 2);
for (1 .. 50) { last if @got >= 2; $sub->wait_for_messages(0.1) }
check('messages', \@got, [['pl:chan', 'hello'], ['pl:*', 'pl:chan', 'hello']]);
check('numsub', [$r->pubsub('numsub', 'pl:chan')], ['pl:chan', 1]);
$sub->unsubscribe('pl:chan', sub { });
$sub->punsubscribe('pl:*', sub { });
$sub->quit;

# MULTI/EXEC
check('multi', $r->multi, 'OK');
check('queued', $r->set('pl:tx', 'a'), 'QUEUED');
check('queued 2', $r->incr('pl:tx'), 'QUEUED');
# (the client croaks on the first error reply inside EXEC's array)
check('exec', attempt(sub { [$r->exec] }), 'Error(ERR value is not an integer or out of range)');
check('exec ran the rest', $r->get('pl:tx'), 'a');
check('multi 2', $r->multi, 'OK');
check('queued error', attempt(sub { $r->set('pl:tx') }), "Error(ERR wrong number of arguments for 'set' command)");
check('exec abort', attempt(sub { $r->exec }), 'Error(EXECABORT Transaction discarded because of previous errors.)');
my $w = Redis->new(server => $server, reconnect => 0);
$w->watch('pl:w');
$r->set('pl:w', 'theirs');
$w->multi;
$w->set('pl:w', 'mine');
check('watch abort', scalar($w->exec), undef);
$w->quit;

# a pipeline of a few thousand commands: callbacks, then one wait
my @replies;
$r->sadd('pl:pipe', "m$_", sub { push @replies, $_[1] // $_[0] }) for 1 .. 3000;
$r->scard('pl:pipe', sub { push @replies, $_[1] // $_[0] });
$r->wait_all_responses;
check('pipelined sadd', (scalar(grep { $_ eq '1' } @replies[0 .. 2999]) == 3000) ? 1 : 0, 1);
check('pipelined scard', $replies[3000], 3000);

# Lua
check('eval', [$r->eval("return {KEYS[1], ARGV[1], redis.call('scard', KEYS[1])}", 1, 'pl:pipe', 'a')],
      ['pl:pipe', 'a', 3000]);
my $sha = $r->script_load("return redis.call('type', KEYS[1])");
check('script load', $sha, sub { $_[0] =~ /^[0-9a-f]{40}$/ });
check('evalsha status', $r->evalsha($sha, 1, 'pl:z'), 'zset');
check('evalsha unknown', attempt(sub { $r->evalsha('0' x 40, 0) }), 'Error(NOSCRIPT No matching script. Please use EVAL.)');
check('eval error_reply', attempt(sub { $r->eval("return redis.error_reply('E1 custom')", 0) }), 'Error(E1 custom)');

my @keys = $r->keys('*');
check('dbsize', $r->dbsize, scalar @keys);
$r->quit;
if ($failures) {
    print STDERR "perl Redis: $failures mismatches\n";
    exit 1;
}
print STDERR "perl Redis $Redis::VERSION: all checks passed\n";
exit 0;
