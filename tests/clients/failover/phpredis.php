<?php
// Failover writer: phpredis. phpredis has no Sentinel-managed connection: the
// application asks RedisSentinel for the master and reconnects itself when a
// write fails, which is what this writer does (see README.md).

$PROFILES = [
    // phpredis' defaults: no connect timeout, reads wait default_socket_timeout (60 s)
    'default' => ['timeout' => 0.0, 'read_timeout' => 0.0, 'sentinel_timeout' => 0.0],
    // 250 ms connect/read timeouts on the node and the sentinels, so a frozen
    // or cut primary is given up on quickly, then the sentinels are asked again
    'tuned' => ['timeout' => 0.25, 'read_timeout' => 0.25, 'sentinel_timeout' => 0.25],
];

function emit($obj) {
    fwrite(STDOUT, json_encode($obj, JSON_UNESCAPED_SLASHES) . "\n");
    fflush(STDOUT);
}

function describe($e) {
    return get_class($e) . ': ' . $e->getMessage();
}

// the master's address from the first sentinel that answers
function discover($cfg, $s) {
    $last = null;
    foreach ($cfg['sentinels'] as [$host, $port]) {
        try {
            $sentinel = new RedisSentinel($host, $port, $s['sentinel_timeout']);
            $addr = $sentinel->getMasterAddrByName($cfg['master']);
            if ($addr) {
                return $addr;
            }
        } catch (Exception $e) {
            $last = $e;
        }
    }
    throw new RedisException('no sentinel named a master' . ($last ? ' (' . $last->getMessage() . ')' : ''));
}

$cfg = json_decode($argv[1], true);
$profile = $cfg['profile'] ?? 'tuned';
$s = $PROFILES[$profile];
pcntl_async_signals(true);
pcntl_signal(SIGTERM, function () { exit(0); });
emit(['ev' => 'start', 'client' => 'phpredis', 'version' => phpversion('redis'),
      'profile' => $profile, 'settings' => $s]);
$redis = null;
$addr = null;
$finish = microtime(true) + ($cfg['max_seconds'] ?? 120);
$wait_ms = $cfg['wait_timeout_ms'] ?? 100;
for ($seq = 1; microtime(true) < $finish; $seq++) {
    $line = ['ev' => 'w', 'seq' => $seq];
    try {
        if ($redis === null) {
            [$host, $port] = discover($cfg, $s);
            $r = new Redis();
            $r->connect($host, (int)$port, $s['timeout']);
            if ($s['read_timeout'] > 0) {
                $r->setOption(Redis::OPT_READ_TIMEOUT, $s['read_timeout']);
            }
            $redis = $r;
            $addr = "$host:$port";
        }
        if ($redis->set($cfg['prefix'] . $seq, (string)$seq) !== true) {
            $error = $redis->getLastError();
            $redis->clearLastError();
            throw new RedisException($error ?: 'SET did not return true');
        }
        $line['t'] = microtime(true);
        $line['ok'] = true;
        $line['addr'] = $addr;
        try {
            $line['wait'] = $redis->rawCommand('WAIT', 1, $wait_ms);
        } catch (Exception $e) {
            $line['wait'] = null;
            $line['werr'] = describe($e);
        }
    } catch (Exception $e) {
        $line['t'] = microtime(true);
        $line['ok'] = false;
        $line['err'] = describe($e);
        // READONLY, a lost connection, a timeout: ask the sentinels again
        if ($redis !== null) {
            try { $redis->close(); } catch (Exception $ignored) {}
        }
        $redis = null;
    }
    emit($line);
    usleep(($cfg['interval_ms'] ?? 10) * 1000);
}
