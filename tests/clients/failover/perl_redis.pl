#!/usr/bin/perl
# Failover writer: Perl Redis with its `sentinels =>` option (see README.md).
use strict;
use warnings;
use JSON::PP;
use Time::HiRes qw(time sleep);
use Redis;

my %PROFILES = (
    # only what discovery needs: no reconnect, so a lost connection stays lost
    default => {},
    # reconnect (asking the sentinels again) every 50 ms for up to 2 s, and
    # 250 ms connect/read/write timeouts so a frozen/cut primary fails fast;
    # and SIGPIPE ignored (not a Redis.pm option: the process's): writing to a
    # connection the dead primary reset must be an error, not the end
    tuned => { ignore_sigpipe => 1, reconnect => 2, every => 50_000, cnx_timeout => 0.25,
               read_timeout => 0.25, write_timeout => 0.25,
               sentinels_cnx_timeout => 0.25, sentinels_read_timeout => 0.25,
               sentinels_write_timeout => 0.25 },
);

my $json = JSON::PP->new->canonical;
$| = 1;
sub emit { print $json->encode($_[0]), "\n" }
sub describe { my $e = shift; $e =~ s/\s+at \S+ line \d+\.?\s*$//; $e =~ s/\s+$//; return "die: $e" }

my $cfg = decode_json($ARGV[0]);
my $profile = $cfg->{profile} // 'tuned';
$SIG{TERM} = sub { exit 0 };
emit({ ev => 'start', client => 'perl-redis', version => "$Redis::VERSION",
       profile => $profile, settings => $PROFILES{$profile} });
my @sentinels = map { "$_->[0]:$_->[1]" } @{ $cfg->{sentinels} };
my %options = %{ $PROFILES{$profile} };
$SIG{PIPE} = 'IGNORE' if delete $options{ignore_sigpipe};
my $redis;
my $finish = time + ($cfg->{max_seconds} // 120);
my $wait_ms = $cfg->{wait_timeout_ms} // 100;
for (my $seq = 1; time < $finish; $seq++) {
    my %line = (ev => 'w', seq => $seq);
    eval {
        # building the client asks the sentinels; if that fails, try again next time
        $redis //= Redis->new(sentinels => [@sentinels], service => $cfg->{master},
                              %options);
        $redis->set($cfg->{prefix} . $seq, "$seq");
        $line{t} = time;
        $line{ok} = JSON::PP::true;
        $line{addr} = $redis->{server};
        my $w = eval { $redis->wait(1, $wait_ms) };
        if (defined $w) { $line{wait} = $w + 0 }
        else { $line{wait} = undef; $line{werr} = describe($@) }
        1;
    } or do {
        $line{t} = time;
        $line{ok} = JSON::PP::false;
        $line{err} = describe($@);
    };
    emit(\%line);
    sleep(($cfg->{interval_ms} // 10) / 1000);
}
