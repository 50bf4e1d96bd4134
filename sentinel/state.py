"""The sentinel's brain: Redis Sentinel's monitoring, voting and failover
algorithm as a state machine without I/O.

Drive it with:

* `start(now)` once, then `tick(now)` every 20-50 ms (monotonic milliseconds),
* `on_link_up` / `on_link_down` / `on_reply` / `on_pubsub_message` as the
  connections it asked for (actions.Connect / actions.Send) report back,
* `on_script_started` / `on_script_exited` for scripts it asked to run,
* client commands through `sentinel_command`, `publish`, `info_section`,
  `role` (commands.py).

Every entry point returns the actions to perform, in order (see actions.py).

Deviations from Redis (all keep Redis's protocol and the safety rules of
its algorithm; they only remove waiting):

1. SDOWN is measured from the last *valid* reply whenever a PING is pending
   or the link is down (Redis measures from when the first unanswered PING
   was sent, which adds up to one ping period). PINGs go out every
   min(1 s, down-after/2) so a healthy instance never looks late.
2. While the master is SDOWN but not yet ODOWN (and while a failover waits
   for its election) peers are asked every 100 ms instead of every second,
   and every reply is acted on at once instead of at the next timer tick.
3. Replicas' INFO is polled every second as soon as the master is SDOWN
   (Redis: ODOWN), so replica selection has fresh data; replicas being
   promoted or reconfigured are polled every 250 ms, and an INFO is
   pipelined right after every SLAVEOF transaction so the promotion is seen
   one round trip after it happens.
4. Election start is staggered by runid instead of left to timer jitter:
   among the sentinels agreeing the master is down, the one with the
   smallest runid starts at once, the k-th waits k x 150 ms. Split votes
   become rare; the votes themselves are first-come as in Redis.
5. When every vote of a failed epoch is known and no candidate could have
   reached the majority (a provable split), the election is abandoned at
   once and retried after a short runid-ranked delay, instead of waiting
   for the election timeout and then 2 x failover-timeout. Whenever a win
   by someone else cannot be excluded Redis's waits apply unchanged.
6. Hellos are pushed to every replica and sentinel right after a
   promotion (Redis only shortens the next period).
7. A hello carrying our own runid from another address (a copied
   sentinel.conf) is logged loudly and ignored, and a vote request naming
   our own runid is answered without casting a vote, so two processes
   sharing an ID can never both count as leader.
8. Times come from the caller's monotonic clock: TILT triggers on stalls of
   the process (tick gaps > 2 s), not on wall-clock adjustments.
9. After the promoted replica confirmed (failover state reconf_slaves),
   SENTINEL MASTER(S) describe the master at its new address, without the
   old address's s_down/o_down flags, as GET-MASTER-ADDR-BY-NAME already
   does in Redis: redis-py's Sentinel finds the new master from the leader
   too, not only once every replica has resynchronised.
10. After a switch to a new master address the link reconnects at once (Redis
    may wait up to a second, and with a 1 s down-after can then mark the new
    master SDOWN), and peers' "master is down" opinions, which were about the
    old address, are dropped instead of being counted for up to 5 s more.
11. In select-slave, replicas rejected only for stale INFO are asked again
    and the leader waits up to 2 s for the answers before giving up: the
    fast election can otherwise finish before the 1 s replica INFO poll
    that starts at SDOWN has answered.
12. Before choosing, the leader also waits (one ping period at most) for an
    INFO taken after the master went SDOWN from every usable replica: by then
    the master has stopped streaming, so each offset is final and the choice
    by offset cannot skip the replica holding the last WAIT-confirmed write.
"""
from __future__ import annotations

import ipaddress
import random
import secrets
from collections.abc import Callable

from .actions import (
    Action,
    Connect,
    Disconnect,
    Event,
    Exit,
    FlushConfig,
    HELLO_CHANNEL,
    LinkKind,
    Log,
    LogLevel,
    Purpose,
    Send,
)
from .commands import CommandsMixin
from .config import (
    KnownReplica,
    KnownSentinel,
    MasterConfig,
    SentinelConfig,
    is_executable as _script_is_executable,
)
from .hello import Hello, parse_hello
from .info import parse_info
from .instances import Addr, FailoverState, Flag, Instance, Link, Timings
from .scripts import ScriptQueue

MAX_PENDING_COMMANDS = 100
MAX_DESYNC = 1000
SIMFAILURE_CRASH_AFTER_ELECTION = 1 << 0
SIMFAILURE_CRASH_AFTER_PROMOTION = 1 << 1

Resolver = Callable[[str], "str | None"]


def resolve_literal(host: str) -> str | None:
    """The default resolver: IP literals only (Redis without resolve-hostnames)."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def _text(reply: object) -> str:
    if isinstance(reply, (bytes, bytearray)):
        return bytes(reply).decode("utf-8", "replace")
    return str(reply)


class CreateError(Exception):
    """Why an instance could not be created (Redis's texts)."""


class SentinelState(CommandsMixin):
    def __init__(
        self,
        config: SentinelConfig,
        now_ms: int,
        *,
        rng: random.Random | None = None,
        resolver: Resolver | None = None,
        is_executable: Callable[[str], bool] | None = None,
        timings: Timings | None = None,
    ):
        self.config = config
        self.rng = rng or random.Random()
        self.timings = timings or Timings()
        self._resolver = resolver or resolve_literal
        self._is_executable = is_executable or _script_is_executable
        self.port = config.port
        self._myid_generated = config.myid is None
        if config.myid is None:
            self.myid = "".join(self.rng.choice("0123456789abcdef") for _ in range(40)) if rng else secrets.token_hex(20)
        else:
            self.myid = config.myid
        self.current_epoch = config.current_epoch
        self.announce_ip = config.announce_ip
        self.announce_port = config.announce_port
        self.resolve_hostnames = config.resolve_hostnames
        self.announce_hostnames = config.announce_hostnames
        self.deny_scripts_reconfig = config.deny_scripts_reconfig
        self.sentinel_user = config.sentinel_user
        self.sentinel_pass = config.sentinel_pass
        self.simfailure_flags = 0
        self.tilt = False
        self.tilt_start_time = 0
        self.previous_time: int | None = None
        self.scripts = ScriptQueue()
        self.masters: dict[str, Instance] = {}
        self._instances: dict[int, Instance] = {}
        self._links: dict[int, Link] = {}
        self._next_iid = 1
        self._next_link = 1
        self._next_conn = 1
        self._out: list[Action] = []
        self._own_hello_addrs: set[tuple[str, int]] = set()
        self._dup_warned: dict[tuple[str, int], int] = {}
        for mc in config.masters:
            self._load_master(mc, now_ms)

    # ------------------------------------------------------------------
    # Entry points
    # ------------------------------------------------------------------

    def start(self, now: int) -> list[Action]:
        """Persist a freshly generated ID and announce the monitored masters."""
        self._out = []
        if self._myid_generated:
            self._flush()
        self._out.append(Log(LogLevel.WARNING, f"Sentinel ID is {self.myid}"))
        for master in self.masters.values():
            self._event(LogLevel.WARNING, "+monitor", master, f"quorum {master.quorum}")
        self.previous_time = now
        return self._drain()

    def tick(self, now: int) -> list[Action]:
        self._out = []
        self._check_tilt(now)
        switch_to: list[Instance] = []
        for master in list(self.masters.values()):
            if master.iid not in self._instances:
                continue
            self._handle_instance(master, now)
            for slave in list(master.slaves.values()):
                self._handle_instance(slave, now)
            for sentinel in list(master.sentinels.values()):
                self._handle_instance(sentinel, now)
            if master.failover_state == FailoverState.UPDATE_CONFIG:
                switch_to.append(master)
        for master in switch_to:
            self._switch_to_promoted(master, now)
        self._out.extend(self.scripts.run_pending(now))
        self._out.extend(self.scripts.kill_timed_out(now, self.timings.script_max_runtime))
        return self._drain()

    def on_link_up(self, link_id: int, conn: int, now: int, local_ip: str | None = None) -> list[Action]:
        self._out = []
        link = self._links.get(link_id)
        if link is None or link.conn != conn or not link.connecting:
            return []
        link.connecting = False
        link.disconnected = False
        link.pending_commands = 0
        link.cc_conn_time = link.pc_conn_time = link.pc_last_activity = now
        link.local_ip = local_ip
        owners = self._link_owners(link)
        if owners:
            self._send_ping(owners[0], now)  # Redis pings as soon as a link is up
            for ri in owners:
                self._send_periodic(ri, now)
        return self._drain()

    def on_link_down(self, link_id: int, conn: int, now: int, reason: str = "") -> list[Action]:
        self._out = []
        link = self._links.get(link_id)
        if link is None or link.conn != conn or (link.disconnected and not link.connecting):
            return []
        link.disconnected = True
        link.connecting = False
        link.pending_commands = 0
        owners = self._link_owners(link)
        if owners:
            self._event(LogLevel.DEBUG, "-cmd-link-reconnection", owners[0], f"#{reason or 'Connection lost'}")
        for ri in owners:
            ri.info_sent_time = ri.hello_sent_time = ri.ask_sent_time = 0
        return self._drain()

    def on_reply(self, send: Send, reply: object, now: int) -> list[Action]:
        self._out = []
        link = self._links.get(send.link_id)
        if link is None or link.conn != send.conn or link.disconnected:
            return []
        if link.pending_commands > 0:
            link.pending_commands -= 1
        ri = self._instances.get(send.target)
        if ri is None or ri.link is not link:
            return []
        if send.purpose == Purpose.PING:
            self._on_ping_reply(ri, reply, now)
        elif send.purpose == Purpose.INFO:
            ri.info_sent_time = 0
            if not isinstance(reply, BaseException) and isinstance(reply, (str, bytes, bytearray)):
                self._refresh_info(ri, _text(reply), now)
        elif send.purpose == Purpose.HELLO:
            ri.hello_sent_time = 0
            if not isinstance(reply, BaseException):
                ri.last_pub_time = now
        elif send.purpose == Purpose.IS_MASTER_DOWN:
            self._on_is_master_down_reply(ri, reply, now)
        return self._drain()

    def on_pubsub_message(self, link_id: int, conn: int, channel: str | bytes, payload: str | bytes,
                          now: int) -> list[Action]:
        """A message (or subscribe confirmation, with payload "") on a
        monitored instance's pub/sub connection."""
        self._out = []
        link = self._links.get(link_id)
        if link is None or link.conn != conn:
            return []
        link.pc_last_activity = now
        if _text(channel) == HELLO_CHANNEL and payload:
            self._process_hello(_text(payload), now)
        return self._drain()

    def on_script_started(self, job_id: int, pid: int, now: int) -> list[Action]:
        self._out = list(self.scripts.started(job_id, pid))
        return self._drain()

    def on_script_exited(self, job_id: int, exitcode: int, signal: int, now: int) -> list[Action]:
        self._out = list(self.scripts.exited(job_id, exitcode, signal, now, self.timings.script_retry_delay))
        return self._drain()

    def on_flush_failed(self, now: int, error: str = "") -> list[Action]:
        return [Log(LogLevel.WARNING,
                    f"WARNING: Sentinel was not able to save the new configuration on disk!!!: {error}")]

    # ------------------------------------------------------------------
    # Output helpers
    # ------------------------------------------------------------------

    def _drain(self) -> list[Action]:
        """Hand over the queued actions; config flushes collapse into one, last
        (it saves the state as it is after the whole call)."""
        out = self._out
        self._out = []
        if any(isinstance(a, FlushConfig) for a in out):
            out = [a for a in out if not isinstance(a, FlushConfig)]
            out.append(FlushConfig())
        return out

    def _flush(self) -> None:
        self._out.append(FlushConfig())

    def _announce_host(self, addr: Addr) -> str:
        return addr.hostname if self.announce_hostnames else addr.ip

    def _addr_and_port(self, addr: Addr) -> str:
        host = self._announce_host(addr)
        return f"[{host}]:{addr.port}" if ":" in host else f"{host}:{addr.port}"

    def describe(self, ri: Instance) -> str:
        """Redis's "%@": "<type> <name> <ip> <port>[ @ <master> <ip> <port>]"."""
        text = f"{ri.type_name} {ri.name} {self._announce_host(ri.addr)} {ri.addr.port}"
        master = None if ri.is_master else ri.master
        if master is not None:
            text += f" @ {master.name} {self._announce_host(master.addr)} {master.addr.port}"
        return text

    def _event(self, level: LogLevel, type_: str, ri: Instance | None, rest: str = "",
               *, with_instance: bool = True) -> None:
        if ri is not None and with_instance:
            message = self.describe(ri) + (f" {rest}" if rest else "")
        else:
            message = rest
        self._out.append(Event(type_, message, level))
        if level == LogLevel.WARNING and ri is not None:
            master = ri if ri.is_master else ri.master
            if master is not None and master.notification_script:
                self.scripts.schedule((master.notification_script, type_, message))

    def _client_reconfig_script(self, master: Instance, role: str, from_addr: Addr, to_addr: Addr) -> None:
        if master.client_reconfig_script:
            self.scripts.schedule((
                master.client_reconfig_script, master.name, role, "start",
                self._announce_host(from_addr), str(from_addr.port),
                self._announce_host(to_addr), str(to_addr.port),
            ))

    # ------------------------------------------------------------------
    # Instances and links
    # ------------------------------------------------------------------

    def _resolve(self, host: str) -> str | None:
        literal = resolve_literal(host)
        if literal is not None:
            return literal
        if not self.resolve_hostnames:
            return None
        return self._resolver(host)

    def make_addr(self, hostname: str, port: int, accept_unresolved: bool) -> Addr:
        if not 0 <= port <= 65535:
            raise CreateError("Invalid port number.")
        ip = self._resolve(hostname)
        if ip is None:
            if self.resolve_hostnames and accept_unresolved:
                ip = ""
            else:
                raise CreateError("Can't resolve instance hostname.")
        return Addr(hostname, ip, port)

    def _new_link(self, kind: LinkKind, now: int) -> Link:
        link = Link(self._next_link, kind)
        self._next_link += 1
        # A link starts with a "pending ping" at creation so an address that
        # never answers goes SDOWN after down-after, like Redis.
        link.act_ping_time = now
        link.last_avail_time = now
        link.last_pong_time = now
        self._links[link.link_id] = link
        return link

    def create_instance(self, name: str | None, flags: Flag, hostname: str, port: int, quorum: int,
                        master: Instance | None, now: int) -> Instance:
        """Create and register an instance; CreateError with Redis's text if not possible."""
        addr = self.make_addr(hostname, port, accept_unresolved=True)
        if flags & Flag.SLAVE:
            name = self._addr_and_port(addr)
        assert name is not None
        if flags & Flag.MASTER:
            table = self.masters
        elif flags & Flag.SLAVE:
            assert master is not None
            table = master.slaves
        else:
            assert master is not None
            table = master.sentinels
        if name in table:
            if flags & Flag.MASTER:
                raise CreateError("Duplicate master name.")
            if flags & Flag.SLAVE:
                raise CreateError("Duplicate hostname and port for replica.")
            raise CreateError("Duplicate runid for sentinel.")
        kind = LinkKind.SENTINEL if flags & Flag.SENTINEL else LinkKind.REDIS
        ri = Instance(
            iid=self._next_iid,
            flags=flags,
            name=name,
            addr=addr,
            link=self._new_link(kind, now),
            master=master,
            quorum=quorum,
            last_pub_time=now,
            last_hello_time=now,
            last_master_down_reply_time=now,
            down_after_period=master.down_after_period if master else self.timings.default_down_after,
            failover_timeout=self.timings.default_failover_timeout,
            role_reported=flags & (Flag.MASTER | Flag.SLAVE),
            role_reported_time=now,
            slave_conf_change_time=now,
        )
        self._next_iid += 1
        self._instances[ri.iid] = ri
        table[name] = ri
        return ri

    def _close_link(self, link: Link) -> None:
        if link.conn and (not link.disconnected or link.connecting):
            self._out.append(Disconnect(link.link_id, link.conn))
        link.disconnected = True
        link.connecting = False
        link.pending_commands = 0

    def _release_link(self, link: Link) -> None:
        link.refcount -= 1
        if link.refcount <= 0:
            self._close_link(link)
            self._links.pop(link.link_id, None)

    def release_instance(self, ri: Instance) -> None:
        """Forget an instance (and a master's replicas and sentinels)."""
        for child in list(ri.slaves.values()) + list(ri.sentinels.values()):
            self.release_instance(child)
        ri.slaves.clear()
        ri.sentinels.clear()
        self._release_link(ri.link)
        self._instances.pop(ri.iid, None)
        if ri.is_slave and ri.flags & Flag.PROMOTED and ri.master is not None:
            ri.master.promoted_slave = None

    def _link_owners(self, link: Link) -> list[Instance]:
        return [ri for ri in self._instances.values() if ri.link is link]

    def _load_master(self, mc: MasterConfig, now: int) -> None:
        master = self.create_instance(mc.name, Flag.MASTER, mc.host, mc.port, mc.quorum, None, now)
        self.apply_master_config(master, mc)
        for replica in mc.known_replicas:
            try:
                self.create_instance(None, Flag.SLAVE, replica.host, replica.port, master.quorum, master, now)
            except CreateError:
                pass
        for known in mc.known_sentinels:
            if known.runid == self.myid:
                continue  # our own ID listed as a peer: a copied config, never a voter
            try:
                si = self.create_instance(known.runid, Flag.SENTINEL, known.host, known.port,
                                          master.quorum, master, now)
            except CreateError:
                continue
            si.runid = known.runid
            self._try_connection_sharing(si)

    def apply_master_config(self, master: Instance, mc: MasterConfig) -> None:
        master.down_after_period = mc.down_after_ms
        master.failover_timeout = mc.failover_timeout_ms
        master.parallel_syncs = mc.parallel_syncs
        master.notification_script = mc.notification_script
        master.client_reconfig_script = mc.client_reconfig_script
        master.auth_pass = mc.auth_pass
        master.auth_user = mc.auth_user
        master.master_reboot_down_after_period = mc.master_reboot_down_after_ms
        master.config_epoch = mc.config_epoch
        master.leader_epoch = mc.leader_epoch
        master.renamed_commands = dict(mc.rename_commands)
        self.current_epoch = max(self.current_epoch, mc.config_epoch)
        self.propagate_down_after(master)

    def propagate_down_after(self, master: Instance) -> None:
        for ri in list(master.slaves.values()) + list(master.sentinels.values()):
            ri.down_after_period = master.down_after_period

    def _try_connection_sharing(self, si: Instance) -> None:
        if si.runid is None or si.link.refcount > 1:
            return
        for master in self.masters.values():
            if master is si.master:
                continue
            match = self._find_sentinel(master, None, 0, si.runid)
            if match is None or match is si:
                continue
            self._release_link(si.link)
            si.link = match.link
            match.link.refcount += 1
            return

    def _find_sentinel(self, master: Instance, ip: str | None, port: int, runid: str | None) -> Instance | None:
        return self._find_by_addr_runid(master.sentinels, ip, port, runid)

    def _find_by_addr_runid(self, table: dict[str, Instance], ip: str | None, port: int,
                            runid: str | None) -> Instance | None:
        target: Addr | None = None
        if ip is not None:
            try:
                target = self.make_addr(ip, port, accept_unresolved=True)
            except CreateError:
                return None
        for ri in table.values():
            if runid is not None and ri.runid is None:
                continue
            if (runid is None or ri.runid == runid) and (target is None or ri.addr.same_as(target)):
                return ri
        return None

    def _addr_equals_hostname(self, addr: Addr, hostname: str | None) -> bool:
        if hostname is None:
            return False
        ip = self._resolve(hostname)
        if ip is None:
            own = addr.hostname if self.resolve_hostnames else addr.ip
            return own.lower() == hostname.lower()
        return addr.ip.lower() == ip.lower()

    def current_master_addr(self, master: Instance) -> Addr:
        """The promoted replica's address once it confirmed the promotion."""
        if (master.flags & Flag.FAILOVER_IN_PROGRESS and master.promoted_slave is not None
                and master.failover_state >= FailoverState.RECONF_SLAVES):
            return master.promoted_slave.addr
        return master.addr

    # ------------------------------------------------------------------
    # Sending
    # ------------------------------------------------------------------

    def _send(self, ri: Instance, purpose: Purpose, *argv: str) -> bool:
        link = ri.link
        if link.disconnected:
            return False
        master = ri if ri.is_master else ri.master
        args = (ri.command(argv[0]),) + tuple(str(a) for a in argv[1:])
        self._out.append(Send(link.link_id, link.conn, args, purpose, ri.iid, master.name if master else ri.name))
        link.pending_commands += 1
        return True

    def _connect_action(self, ri: Instance, link: Link) -> Connect:
        if ri.is_sentinel:
            if self.sentinel_pass:
                user, password = self.sentinel_user, self.sentinel_pass
            else:
                user, password = None, self.config.requirepass
        else:
            owner = ri if ri.is_master else ri.master
            assert owner is not None
            user, password = owner.auth_user, owner.auth_pass
        owner = ri.master if ri.master is not None else ri
        prefix = f"sentinel-{self.myid[:8]}"
        return Connect(
            link_id=link.link_id,
            conn=link.conn,
            kind=link.kind,
            host=ri.addr.ip or ri.addr.hostname,
            port=ri.addr.port,
            auth_user=user if password else None,
            auth_pass=password,
            client_name_cmd=f"{prefix}-cmd",
            client_name_pubsub=None if ri.is_sentinel else f"{prefix}-pubsub",
            renames=tuple(sorted(owner.renamed_commands.items())),
        )

    def _reconnect(self, ri: Instance, now: int) -> None:
        link = ri.link
        if not link.disconnected or link.connecting or ri.addr.port == 0:
            return
        if now - link.last_reconn_time < self._ping_period(ri):
            return
        link.last_reconn_time = now
        if self.resolve_hostnames:
            ip = self._resolve(ri.addr.hostname)
            if ip:
                ri.addr.ip = ip
        link.conn = self._next_conn
        self._next_conn += 1
        link.connecting = True
        self._out.append(self._connect_action(ri, link))

    def _ping_period(self, ri: Instance) -> int:
        return max(1, min(self.timings.ping_period, ri.down_after_period // 2))

    def _send_ping(self, ri: Instance, now: int) -> bool:
        if not self._send(ri, Purpose.PING, "PING"):
            return False
        link = ri.link
        link.last_ping_time = now
        if link.act_ping_time == 0:
            link.act_ping_time = now
        return True

    def _send_info(self, ri: Instance, now: int) -> None:
        if self._send(ri, Purpose.INFO, "INFO"):
            ri.info_sent_time = now

    def _info_period(self, ri: Instance) -> int:
        master = ri.master
        if ri.is_slave and master is not None:
            if (master.flags & Flag.FAILOVER_IN_PROGRESS
                    and ri.flags & (Flag.PROMOTED | Flag.RECONF_SENT | Flag.RECONF_INPROG)):
                return self.timings.reconf_info_period
            if master.flags & (Flag.S_DOWN | Flag.O_DOWN | Flag.FAILOVER_IN_PROGRESS) or ri.master_link_down_time != 0:
                return 1000
        return self.timings.info_period

    def _send_periodic(self, ri: Instance, now: int) -> None:
        link = ri.link
        if link.disconnected:
            return
        if link.pending_commands >= MAX_PENDING_COMMANDS * link.refcount:
            return
        if not ri.is_sentinel and (ri.info_refresh == 0 or now - ri.info_refresh > self._info_period(ri)):
            if not ri.info_sent_time or now - ri.info_sent_time >= 1000:
                self._send_info(ri, now)
        ping_period = self._ping_period(ri)
        if now - link.last_pong_time > ping_period and now - link.last_ping_time > ping_period // 2:
            self._send_ping(ri, now)
        if now - ri.last_pub_time > self.timings.publish_period:
            if not ri.hello_sent_time or now - ri.hello_sent_time >= 1000:
                self._send_hello(ri, now)

    def _send_hello(self, ri: Instance, now: int) -> bool:
        if ri.link.disconnected:
            return False
        master = ri if ri.is_master else ri.master
        assert master is not None
        ip = self.announce_ip or ri.link.local_ip
        if not ip:
            return False
        port = self.announce_port or self.port
        maddr = self.current_master_addr(master)
        hello = Hello(ip, port, self.myid, self.current_epoch, master.name,
                      self._announce_host(maddr), maddr.port, master.config_epoch)
        self._own_hello_addrs.add((ip, port))
        if self._send(ri, Purpose.HELLO, "PUBLISH", HELLO_CHANNEL, hello.encode()):
            ri.hello_sent_time = now
            return True
        return False

    def _push_hellos(self, master: Instance, now: int) -> None:
        """Tell everybody about a new configuration right now."""
        for ri in [master, *master.slaves.values(), *master.sentinels.values()]:
            self._send_hello(ri, now)

    def _send_slaveof(self, ri: Instance, addr: Addr | None) -> bool:
        """SLAVEOF inside MULTI/EXEC with CONFIG REWRITE and CLIENT KILL, as
        Redis sends it (replies are ignored: INFO shows the effect)."""
        if ri.link.disconnected:
            return False
        if addr is None:
            host, port = "NO", "ONE"
        else:
            host, port = self._announce_host(addr), str(addr.port)
        self._send(ri, Purpose.DISCARD, "MULTI")
        self._send(ri, Purpose.DISCARD, "SLAVEOF", host, port)
        self._send(ri, Purpose.DISCARD, "CONFIG", "REWRITE")
        self._send(ri, Purpose.DISCARD, "CLIENT", "KILL", "TYPE", "normal")
        self._send(ri, Purpose.DISCARD, "CLIENT", "KILL", "TYPE", "pubsub")
        self._send(ri, Purpose.DISCARD, "EXEC")
        return True

    # ------------------------------------------------------------------
    # Replies
    # ------------------------------------------------------------------

    def _on_ping_reply(self, ri: Instance, reply: object, now: int) -> None:
        link = ri.link
        text = _text(reply)
        if isinstance(reply, BaseException) or isinstance(reply, (str, bytes, bytearray)):
            if text.startswith(("PONG", "LOADING", "MASTERDOWN")):
                link.last_avail_time = now
                link.act_ping_time = 0
                if ri.flags & Flag.MASTER_REBOOT and text.startswith("PONG"):
                    ri.flags &= ~Flag.MASTER_REBOOT
            elif (text.startswith("BUSY") and ri.flags & Flag.S_DOWN
                  and not ri.flags & Flag.SCRIPT_KILL_SENT):
                self._send(ri, Purpose.DISCARD, "SCRIPT", "KILL")
                ri.flags |= Flag.SCRIPT_KILL_SENT
        link.last_pong_time = now

    def _on_is_master_down_reply(self, ri: Instance, reply: object, now: int) -> None:
        ri.ask_sent_time = 0
        if not (isinstance(reply, list) and len(reply) == 3 and isinstance(reply[0], int)
                and not isinstance(reply[0], bool) and isinstance(reply[1], (str, bytes, bytearray))
                and isinstance(reply[2], int)):
            return
        ri.last_master_down_reply_time = now
        if reply[0] == 1:
            ri.flags |= Flag.MASTER_DOWN
        else:
            ri.flags &= ~Flag.MASTER_DOWN
        leader = _text(reply[1])
        if leader != "*":
            if ri.leader_epoch != reply[2]:
                self._out.append(Log(LogLevel.WARNING, f"{ri.name} voted for {leader} {reply[2]}"))
            ri.leader = leader
            ri.leader_epoch = reply[2]
        master = ri.master
        if master is not None and not self.tilt and master.iid in self._instances:
            self._act_on_master(master, now)

    def _act_on_master(self, master: Instance, now: int) -> None:
        """The acting half for one master, run as soon as new evidence arrives."""
        self._check_odown(master, now)
        if self._start_failover_if_needed(master, now):
            self._ask_master_state(master, now, forced=True)
        self._failover_step(master, now)

    # ------------------------------------------------------------------
    # INFO
    # ------------------------------------------------------------------

    def _master_looks_sane(self, master: Instance, now: int) -> bool:
        return (bool(master.flags & Flag.MASTER) and master.role_reported == Flag.MASTER
                and not master.flags & (Flag.S_DOWN | Flag.O_DOWN)
                and now - master.info_refresh < self.timings.info_period * 2)

    @staticmethod
    def _no_down_for(ri: Instance, ms: int, now: int) -> bool:
        most_recent = max(ri.s_down_since_time, ri.o_down_since_time)
        return most_recent == 0 or now - most_recent > ms

    def _refresh_info(self, ri: Instance, text: str, now: int) -> None:
        info = parse_info(text)
        ri.info = text
        ri.master_link_down_time = info.master_link_down_ms
        if info.run_id:
            if ri.runid is None:
                ri.runid = info.run_id
            elif ri.runid != info.run_id:
                self._event(LogLevel.NOTICE, "+reboot", ri)
                if ri.is_master and ri.master_reboot_down_after_period:
                    ri.flags |= Flag.MASTER_REBOOT
                    ri.master_reboot_since_time = now
                ri.runid = info.run_id
        if ri.is_master:
            for entry in info.replicas:
                if self._lookup_slave(ri, entry.ip, entry.port) is None:
                    try:
                        slave = self.create_instance(None, Flag.SLAVE, entry.ip, entry.port, ri.quorum, ri, now)
                    except CreateError:
                        continue
                    self._event(LogLevel.NOTICE, "+slave", slave)
                    self._flush()
        role = Flag(0)
        if info.role == "master":
            role = Flag.MASTER
        elif info.role == "slave":
            role = Flag.SLAVE
        if role == Flag.SLAVE:
            if info.master_host is not None and (
                    ri.slave_master_host is None or info.master_host.lower() != ri.slave_master_host.lower()):
                ri.slave_master_host = info.master_host
                ri.slave_conf_change_time = now
            if info.master_port is not None and info.master_port != ri.slave_master_port:
                ri.slave_master_port = info.master_port
                ri.slave_conf_change_time = now
            if info.master_link_up is not None:
                ri.slave_master_link_up = info.master_link_up
            if info.slave_priority is not None:
                ri.slave_priority = info.slave_priority
            if info.slave_repl_offset is not None:
                ri.slave_repl_offset = info.slave_repl_offset
            if info.replica_announced is not None:
                ri.replica_announced = info.replica_announced
        ri.info_refresh = now
        master = ri.master
        if (ri.is_slave and master is not None and master.flags & Flag.FAILOVER_IN_PROGRESS
                and master.failover_state == FailoverState.SELECT_SLAVE and not self.tilt):
            self._failover_step(master, now)  # it may have been waiting for this INFO

        if role and role != ri.role_reported:
            ri.role_reported_time = now
            ri.role_reported = role
            if role == Flag.SLAVE:
                ri.slave_conf_change_time = now
            coherent = (ri.flags & (Flag.MASTER | Flag.SLAVE)) == role
            self._event(LogLevel.VERBOSE, "+role-change" if coherent else "-role-change", ri,
                        f"new reported role is {'master' if role == Flag.MASTER else 'slave'}")

        if self.tilt:
            return
        master = ri.master
        if ri.is_slave and master is not None and role == Flag.MASTER:
            if (ri.flags & Flag.PROMOTED and master.flags & Flag.FAILOVER_IN_PROGRESS
                    and master.failover_state == FailoverState.WAIT_PROMOTION):
                self._promotion_confirmed(master, ri, now)
            else:
                wait_time = self.timings.publish_period * 4
                if (not ri.flags & Flag.PROMOTED and self._master_looks_sane(master, now)
                        and self._no_down_for(ri, wait_time, now)
                        and now - ri.role_reported_time > wait_time):
                    if self._send_slaveof(ri, master.addr):
                        self._event(LogLevel.NOTICE, "+convert-to-slave", ri)
                        self._send_info(ri, now)
        if (ri.is_slave and master is not None and role == Flag.SLAVE
                and (ri.slave_master_port != master.addr.port
                     or not self._addr_equals_hostname(master.addr, ri.slave_master_host))):
            wait_time = master.failover_timeout
            if (self._master_looks_sane(master, now) and self._no_down_for(ri, wait_time, now)
                    and now - ri.slave_conf_change_time > wait_time):
                if self._send_slaveof(ri, master.addr):
                    self._event(LogLevel.NOTICE, "+fix-slave-config", ri)
        if (ri.is_slave and master is not None and role == Flag.SLAVE
                and ri.flags & (Flag.RECONF_SENT | Flag.RECONF_INPROG)):
            promoted = master.promoted_slave
            progressed = False
            if (ri.flags & Flag.RECONF_SENT and ri.slave_master_host and promoted is not None
                    and self._addr_equals_hostname(promoted.addr, ri.slave_master_host)
                    and ri.slave_master_port == promoted.addr.port):
                ri.flags &= ~Flag.RECONF_SENT
                ri.flags |= Flag.RECONF_INPROG
                self._event(LogLevel.NOTICE, "+slave-reconf-inprog", ri)
                progressed = True
            if ri.flags & Flag.RECONF_INPROG and ri.slave_master_link_up:
                ri.flags &= ~Flag.RECONF_INPROG
                ri.flags |= Flag.RECONF_DONE
                self._event(LogLevel.NOTICE, "+slave-reconf-done", ri)
                progressed = True
            if progressed:
                self._failover_step(master, now)

    def _lookup_slave(self, master: Instance, ip: str, port: int) -> Instance | None:
        try:
            addr = self.make_addr(ip, port, accept_unresolved=False)
        except CreateError:
            return None
        return master.slaves.get(self._addr_and_port(addr))

    def _promotion_confirmed(self, master: Instance, ri: Instance, now: int) -> None:
        master.config_epoch = master.failover_epoch
        master.failover_state = FailoverState.RECONF_SLAVES
        master.failover_state_change_time = now
        self._flush()
        self._event(LogLevel.WARNING, "+promoted-slave", ri)
        if self.simfailure_flags & SIMFAILURE_CRASH_AFTER_PROMOTION:
            self._out.append(Log(LogLevel.WARNING, "Sentinel CRASH because of SENTINEL simulate-failure"))
            self._out.append(Exit(99))
            return
        self._event(LogLevel.WARNING, "+failover-state-reconf-slaves", master)
        self._client_reconfig_script(master, "leader", master.addr, ri.addr)
        self._push_hellos(master, now)
        self._failover_step(master, now)

    # ------------------------------------------------------------------
    # Hello messages
    # ------------------------------------------------------------------

    def _process_hello(self, payload: str, now: int) -> None:
        hello = parse_hello(payload)
        if hello is None:
            return
        if hello.runid == self.myid:
            self._maybe_warn_duplicate(hello.ip, hello.port, now)
            return
        master = self.masters.get(hello.master_name)
        if master is None:
            return
        si = self._find_sentinel(master, hello.ip, hello.port, hello.runid)
        if si is None:
            removed = self._remove_sentinels_by_runid(master, hello.runid)
            if removed:
                self._event(LogLevel.NOTICE, "+sentinel-address-switch", master,
                            f"ip {hello.ip} port {hello.port} for {hello.runid}")
            else:
                other = self._find_sentinel(master, hello.ip, hello.port, None)
                if other is not None:
                    self._event(LogLevel.NOTICE, "+sentinel-invalid-addr", other)
                    obsolete = other.runid
                    if obsolete is not None:
                        for m in self.masters.values():
                            self._remove_sentinels_by_runid(m, obsolete)
                    else:
                        self._remove_sentinel(master, other)
            try:
                si = self.create_instance(hello.runid, Flag.SENTINEL, hello.ip, hello.port,
                                          master.quorum, master, now)
            except CreateError:
                si = None
            if si is not None:
                if not removed:
                    self._event(LogLevel.NOTICE, "+sentinel", si)
                si.runid = hello.runid
                self._try_connection_sharing(si)
                if removed:
                    self._update_sentinel_address_everywhere(si)
                self._flush()
        if hello.current_epoch > self.current_epoch:
            self.current_epoch = hello.current_epoch
            self._flush()
            self._event(LogLevel.WARNING, "+new-epoch", master, str(self.current_epoch), with_instance=False)
        if si is not None and master.config_epoch < hello.master_config_epoch:
            master.config_epoch = hello.master_config_epoch
            self._flush()
            if (hello.master_port != master.addr.port
                    or not self._addr_equals_hostname(master.addr, hello.master_ip)):
                self._event(LogLevel.WARNING, "+config-update-from", si)
                self._event(LogLevel.WARNING, "+switch-master", master,
                            f"{master.name} {self._announce_host(master.addr)} {master.addr.port} "
                            f"{hello.master_ip} {hello.master_port}", with_instance=False)
                old_addr = master.addr.copy()
                if self._reset_and_change_address(master, hello.master_ip, hello.master_port, now):
                    self._client_reconfig_script(master, "observer", old_addr, master.addr)
        if si is not None:
            si.last_hello_time = now

    def _maybe_warn_duplicate(self, ip: str, port: int, now: int) -> None:
        if (ip, port) in self._own_hello_addrs:
            return  # our own hello coming back through the instance's pub/sub
        last = self._dup_warned.get((ip, port))
        if last is not None and now - last < 60_000:
            return
        self._dup_warned[(ip, port)] = now
        self._out.append(Log(
            LogLevel.WARNING,
            f"WARNING: the sentinel at {ip}:{port} announces this sentinel's own ID {self.myid}: "
            "its sentinel.conf was copied from this one. It is ignored and never counted as a voter; "
            "remove the 'sentinel myid' line from its configuration and restart it.",
        ))

    def _remove_sentinel(self, master: Instance, si: Instance) -> None:
        master.sentinels.pop(si.name, None)
        self.release_instance(si)

    def _remove_sentinels_by_runid(self, master: Instance, runid: str) -> int:
        removed = 0
        for si in list(master.sentinels.values()):
            if si.runid == runid:
                self._remove_sentinel(master, si)
                removed += 1
        return removed

    def _update_sentinel_address_everywhere(self, si: Instance) -> None:
        reconfigured = 0
        for master in self.masters.values():
            match = self._find_sentinel(master, None, 0, si.runid)
            if match is None:
                continue
            self._close_link(match.link)
            if match is si:
                continue
            match.addr = si.addr.copy()
            reconfigured += 1
        if reconfigured:
            self._event(LogLevel.NOTICE, "+sentinel-address-update", si,
                        f"{reconfigured} additional matching instances")

    # ------------------------------------------------------------------
    # Failure detection
    # ------------------------------------------------------------------

    def _check_tilt(self, now: int) -> None:
        if self.previous_time is not None:
            delta = now - self.previous_time
            if delta < 0 or delta > self.timings.tilt_trigger:
                self.tilt = True
                self.tilt_start_time = now
                self._event(LogLevel.WARNING, "+tilt", None, "#tilt mode entered")
        self.previous_time = now

    def _handle_instance(self, ri: Instance, now: int) -> None:
        if ri.iid not in self._instances:
            return  # released earlier in this tick (reset or switch of its master)
        self._reconnect(ri, now)
        self._send_periodic(ri, now)
        if self.tilt:
            if now - self.tilt_start_time < self.timings.tilt_period:
                return
            self.tilt = False
            self._event(LogLevel.WARNING, "-tilt", None, "#tilt mode exited")
        self._check_sdown(ri, now)
        if ri.is_master:
            self._check_odown(ri, now)
            if self._start_failover_if_needed(ri, now):
                self._ask_master_state(ri, now, forced=True)
            self._failover_step(ri, now)
            if ri.iid in self._instances:
                self._ask_master_state(ri, now, forced=False)

    def _check_sdown(self, ri: Instance, now: int) -> None:
        link = ri.link
        elapsed = 0
        if link.act_ping_time or link.disconnected:
            elapsed = now - link.last_avail_time
        half = ri.down_after_period // 2
        if (not link.disconnected and now - link.cc_conn_time > self.timings.min_link_reconnect_period
                and link.act_ping_time and now - link.act_ping_time > half
                and now - link.last_pong_time > half):
            self._close_link(link)  # the link looks stuck: reconnect it
        elif (not ri.is_sentinel and not link.disconnected
              and now - link.pc_conn_time > self.timings.min_link_reconnect_period
              and now - link.pc_last_activity > self.timings.publish_period * 3):
            self._close_link(link)  # no pub/sub traffic, not even our own hellos
        down = (
            elapsed > ri.down_after_period
            or (ri.is_master and ri.role_reported == Flag.SLAVE
                and now - ri.role_reported_time > ri.down_after_period + self.timings.info_period * 2)
            or (ri.flags & Flag.MASTER_REBOOT
                and now - ri.master_reboot_since_time > ri.master_reboot_down_after_period)
        )
        if down:
            if not ri.flags & Flag.S_DOWN:
                self._event(LogLevel.WARNING, "+sdown", ri)
                ri.s_down_since_time = now
                ri.flags |= Flag.S_DOWN
        elif ri.flags & Flag.S_DOWN:
            self._event(LogLevel.WARNING, "-sdown", ri)
            ri.flags &= ~(Flag.S_DOWN | Flag.SCRIPT_KILL_SENT)

    def _check_odown(self, master: Instance, now: int) -> None:
        votes = 0
        odown = False
        if master.flags & Flag.S_DOWN:
            votes = 1 + sum(1 for si in master.sentinels.values() if si.flags & Flag.MASTER_DOWN)
            odown = votes >= master.quorum
        if odown:
            if not master.flags & Flag.O_DOWN:
                self._event(LogLevel.WARNING, "+odown", master, f"#quorum {votes}/{master.quorum}")
                master.flags |= Flag.O_DOWN
                master.o_down_since_time = now
                master.odown_start_not_before = now + self._rank(master) * self.timings.election_stagger
        elif master.flags & Flag.O_DOWN:
            self._event(LogLevel.WARNING, "-odown", master)
            master.flags &= ~Flag.O_DOWN

    def _rank(self, master: Instance) -> int:
        """Our position, by runid, among the sentinels that agree the master is down."""
        agreeing = [si.runid.lower() for si in master.sentinels.values()
                    if si.flags & Flag.MASTER_DOWN and si.runid and si.runid != self.myid]
        mine = self.myid.lower()
        return sum(1 for runid in agreeing if runid < mine)

    def _ask_master_state(self, master: Instance, now: int, forced: bool) -> None:
        for ri in list(master.sentinels.values()):
            if now - ri.last_master_down_reply_time > self.timings.ask_period * 5:
                ri.flags &= ~Flag.MASTER_DOWN
                ri.leader = None
            if not master.flags & Flag.S_DOWN or ri.link.disconnected:
                continue
            waiting = (not master.flags & Flag.O_DOWN
                       or master.failover_state == FailoverState.WAIT_START)
            period = self.timings.fast_ask_period if waiting else self.timings.ask_period
            if not forced:
                if now - ri.last_master_down_reply_time < period:
                    continue
                if ri.ask_sent_time and now - ri.ask_sent_time < self.timings.ask_period:
                    continue
            runid = self.myid if master.failover_state > FailoverState.NONE else "*"
            if self._send(ri, Purpose.IS_MASTER_DOWN, "SENTINEL", "is-master-down-by-addr",
                          self._announce_host(master.addr), str(master.addr.port),
                          str(self.current_epoch), runid):
                ri.ask_sent_time = now

    def _reask_doubting_peers(self, master: Instance, now: int) -> None:
        for ri in master.sentinels.values():
            if ri.flags & Flag.MASTER_DOWN or ri.link.disconnected or ri.ask_sent_time:
                continue
            runid = self.myid if master.failover_state > FailoverState.NONE else "*"
            if self._send(ri, Purpose.IS_MASTER_DOWN, "SENTINEL", "is-master-down-by-addr",
                          self._announce_host(master.addr), str(master.addr.port),
                          str(self.current_epoch), runid):
                ri.ask_sent_time = now

    # ------------------------------------------------------------------
    # Votes
    # ------------------------------------------------------------------

    def vote_leader(self, master: Instance, req_epoch: int, req_runid: str, now: int) -> tuple[str | None, int]:
        """Vote for `req_runid` in `req_epoch` unless we already voted in it
        (first come, first served); returns our vote and its epoch."""
        if req_epoch > self.current_epoch:
            self.current_epoch = req_epoch
            self._flush()
            self._event(LogLevel.WARNING, "+new-epoch", master, str(self.current_epoch), with_instance=False)
        if master.leader_epoch < req_epoch and self.current_epoch <= req_epoch:
            master.leader = req_runid
            master.leader_epoch = self.current_epoch
            self._flush()
            self._event(LogLevel.WARNING, "+vote-for-leader", master,
                        f"{master.leader} {master.leader_epoch}", with_instance=False)
            if master.leader.lower() != self.myid.lower():
                # Someone else may be failing over: do not start our own for a while.
                master.failover_start_time = now + self.rng.randrange(MAX_DESYNC)
                master.failover_not_before = max(master.failover_not_before,
                                                 master.failover_start_time + 2 * master.failover_timeout)
        return master.leader, master.leader_epoch

    def _votes(self, master: Instance) -> dict[str, int]:
        counters: dict[str, int] = {}
        for si in master.sentinels.values():
            if si.leader is not None and si.leader_epoch == self.current_epoch:
                counters[si.leader] = counters.get(si.leader, 0) + 1
        return counters

    def _votes_needed(self, master: Instance) -> int:
        voters = len(master.sentinels) + 1
        return max(voters // 2 + 1, master.quorum)

    def get_leader(self, master: Instance, epoch: int, now: int) -> str | None:
        counters = self._votes(master)
        winner, max_votes = None, 0
        for runid, votes in counters.items():
            if votes > max_votes:
                winner, max_votes = runid, votes
        myvote, vote_epoch = self.vote_leader(master, epoch, winner or self.myid, now)
        if myvote is not None and vote_epoch == epoch:
            votes = counters.get(myvote, 0) + 1
            counters[myvote] = votes
            if votes > max_votes:
                winner, max_votes = myvote, votes
        if winner is not None and max_votes < self._votes_needed(master):
            winner = None
        return winner

    def _provably_split(self, master: Instance) -> bool:
        """True when every vote of the failover epoch is known and nobody,
        not even with all unknown votes, reached the majority."""
        epoch = master.failover_epoch
        if self.current_epoch != epoch:
            return False
        counters: dict[str, int] = {}
        unknown = 0
        for si in master.sentinels.values():
            if si.leader is not None and si.leader_epoch == epoch:
                counters[si.leader] = counters.get(si.leader, 0) + 1
            else:
                unknown += 1
        if master.leader is not None and master.leader_epoch == epoch:
            counters[master.leader] = counters.get(master.leader, 0) + 1
        else:
            unknown += 1
        needed = self._votes_needed(master)
        if unknown or needed > len(master.sentinels) + 1:
            return False
        return all(votes < needed for votes in counters.values()) and len(counters) > 1

    # ------------------------------------------------------------------
    # Failover
    # ------------------------------------------------------------------

    def start_failover(self, master: Instance, now: int) -> None:
        master.failover_state = FailoverState.WAIT_START
        master.flags |= Flag.FAILOVER_IN_PROGRESS
        self.current_epoch += 1
        master.failover_epoch = self.current_epoch
        self._event(LogLevel.WARNING, "+new-epoch", master, str(self.current_epoch), with_instance=False)
        self._event(LogLevel.WARNING, "+try-failover", master)
        master.failover_start_time = now + self.rng.randrange(MAX_DESYNC)
        master.failover_not_before = master.failover_start_time + 2 * master.failover_timeout
        master.failover_state_change_time = now

    def _start_failover_if_needed(self, master: Instance, now: int) -> bool:
        if not master.flags & Flag.O_DOWN or master.flags & Flag.FAILOVER_IN_PROGRESS:
            return False
        if now < master.failover_not_before:
            if master.failover_delay_logged != master.failover_not_before:
                master.failover_delay_logged = master.failover_not_before
                seconds = (master.failover_not_before - now + 999) // 1000
                self._out.append(Log(LogLevel.WARNING,
                                     f"Next failover delay: I will not start a failover before {seconds} "
                                     f"seconds from now"))
            return False
        if now < master.odown_start_not_before:
            return False
        self.start_failover(master, now)
        return True

    def _slave_rejection(self, master: Instance, slave: Instance, now: int) -> str | None:
        """Why `slave` cannot be promoted now (None if it can)."""
        t = self.timings
        if slave.flags & (Flag.S_DOWN | Flag.O_DOWN):
            return "down"
        if slave.link.disconnected:
            return "disconnected"
        if now - slave.link.last_avail_time > t.ping_period * 5:
            return "not answering"
        if slave.slave_priority == 0:
            return "priority 0"
        # When the master is SDOWN replicas are polled every second,
        # otherwise only every info-period.
        info_validity = t.ping_period * 5 if master.flags & Flag.S_DOWN else t.info_period * 3
        if now - slave.info_refresh > info_validity:
            return "stale info"
        max_master_down_time = master.down_after_period * 10
        if master.flags & Flag.S_DOWN:
            max_master_down_time += now - master.s_down_since_time
        if slave.master_link_down_time > max_master_down_time:
            return "link down too long"
        return None

    def select_slave(self, master: Instance, now: int) -> Instance | None:
        """Redis's replica choice: usable replicas only, then lowest priority,
        largest replication offset, smallest runid."""
        candidates = [s for s in master.slaves.values() if self._slave_rejection(master, s, now) is None]
        if not candidates:
            return None
        candidates.sort(key=lambda s: (s.slave_priority, -s.slave_repl_offset, s.runid is None,
                                       (s.runid or "").lower()))
        return candidates[0]

    def _await_final_offsets(self, master: Instance, now: int) -> bool:
        """Whether to wait for fresher replica INFO before choosing.

        An offset read before the master went quiet can be behind a write that
        WAIT confirmed on that replica, and choosing by it can promote a replica
        that lacks the write. Once the master is SDOWN it has stopped streaming,
        so an INFO taken after that shows each replica's final offset: ask every
        usable replica for one and wait for it (one ping period at most, then
        choose with what there is, as Redis always does)."""
        if not master.flags & Flag.S_DOWN:
            return False  # a forced failover of a live master: offsets keep moving anyway
        if now - master.failover_state_change_time >= self.timings.ping_period:
            return False
        waiting = False
        for s in master.slaves.values():
            if s.info_refresh > master.s_down_since_time:
                continue
            if self._slave_rejection(master, s, now) not in (None, "stale info"):
                continue
            waiting = True
            if not s.info_sent_time or now - s.info_sent_time >= 250:
                self._send_info(s, now)
        return waiting

    def _abort_failover(self, master: Instance, now: int) -> None:
        assert master.failover_state <= FailoverState.WAIT_PROMOTION
        master.flags &= ~(Flag.FAILOVER_IN_PROGRESS | Flag.FORCE_FAILOVER)
        master.failover_state = FailoverState.NONE
        master.failover_state_change_time = now
        if master.promoted_slave is not None:
            master.promoted_slave.flags &= ~Flag.PROMOTED
            master.promoted_slave = None

    def _failover_step(self, master: Instance, now: int) -> None:
        """Run the failover state machine; cascades through states that can
        advance right away instead of waiting for the next tick."""
        for _ in range(8):
            if not master.flags & Flag.FAILOVER_IN_PROGRESS or master.iid not in self._instances:
                return
            before = master.failover_state
            if before == FailoverState.WAIT_START:
                self._failover_wait_start(master, now)
            elif before == FailoverState.SELECT_SLAVE:
                self._failover_select_slave(master, now)
            elif before == FailoverState.SEND_SLAVEOF_NOONE:
                self._failover_send_slaveof_noone(master, now)
            elif before == FailoverState.WAIT_PROMOTION:
                self._failover_wait_promotion(master, now)
            elif before == FailoverState.RECONF_SLAVES:
                self._failover_reconf_next_slave(master, now)
            if master.failover_state == FailoverState.UPDATE_CONFIG:
                self._switch_to_promoted(master, now)
                return
            if master.failover_state == before or any(isinstance(a, Exit) for a in self._out):
                return

    def _failover_wait_start(self, master: Instance, now: int) -> None:
        leader = self.get_leader(master, master.failover_epoch, now)
        is_leader = leader is not None and leader.lower() == self.myid.lower()
        if not is_leader and not master.flags & Flag.FORCE_FAILOVER:
            split = self._provably_split(master)
            election_timeout = min(self.timings.election_timeout, master.failover_timeout)
            if split or now - master.failover_start_time > election_timeout:
                self._event(LogLevel.WARNING, "-failover-abort-not-elected", master)
                self._abort_failover(master, now)
                if split:
                    # Nobody won this epoch: retry soon, smallest runid first.
                    rank = self._rank(master)
                    master.failover_not_before = (now + self.timings.early_retry_base
                                                  + rank * self.timings.election_stagger
                                                  + self.rng.randrange(self.timings.early_retry_base))
            return
        self._event(LogLevel.WARNING, "+elected-leader", master)
        if self.simfailure_flags & SIMFAILURE_CRASH_AFTER_ELECTION:
            self._out.append(Log(LogLevel.WARNING, "Sentinel CRASH because of SENTINEL simulate-failure"))
            self._out.append(Exit(99))
            return
        master.failover_state = FailoverState.SELECT_SLAVE
        master.failover_state_change_time = now
        self._event(LogLevel.WARNING, "+failover-state-select-slave", master)

    def _failover_select_slave(self, master: Instance, now: int) -> None:
        if self._await_final_offsets(master, now):
            return
        slave = self.select_slave(master, now)
        if slave is None:
            # The election can end before the replicas answered the faster INFO
            # poll that started at SDOWN: refresh stale ones and wait a little
            # rather than abort (an abort costs 2 x failover-timeout).
            stale = [s for s in master.slaves.values() if self._slave_rejection(master, s, now) == "stale info"]
            if stale and now - master.failover_state_change_time < self.timings.ping_period * 2:
                for s in stale:
                    if not s.info_sent_time or now - s.info_sent_time >= 1000:
                        self._send_info(s, now)
                return
            self._event(LogLevel.WARNING, "-failover-abort-no-good-slave", master)
            self._abort_failover(master, now)
            return
        self._event(LogLevel.WARNING, "+selected-slave", slave)
        slave.flags |= Flag.PROMOTED
        master.promoted_slave = slave
        master.failover_state = FailoverState.SEND_SLAVEOF_NOONE
        master.failover_state_change_time = now
        self._event(LogLevel.NOTICE, "+failover-state-send-slaveof-noone", slave)

    def _failover_send_slaveof_noone(self, master: Instance, now: int) -> None:
        promoted = master.promoted_slave
        assert promoted is not None
        if promoted.link.disconnected:
            if now - master.failover_state_change_time > master.failover_timeout:
                self._event(LogLevel.WARNING, "-failover-abort-slave-timeout", master)
                self._abort_failover(master, now)
            return
        if not self._send_slaveof(promoted, None):
            return
        self._send_info(promoted, now)  # see the promotion one round trip later
        self._event(LogLevel.NOTICE, "+failover-state-wait-promotion", promoted)
        master.failover_state = FailoverState.WAIT_PROMOTION
        master.failover_state_change_time = now

    def _failover_wait_promotion(self, master: Instance, now: int) -> None:
        if now - master.failover_state_change_time > master.failover_timeout:
            self._event(LogLevel.WARNING, "-failover-abort-slave-timeout", master)
            self._abort_failover(master, now)

    def _failover_reconf_next_slave(self, master: Instance, now: int) -> None:
        promoted = master.promoted_slave
        assert promoted is not None
        in_progress = sum(1 for s in master.slaves.values() if s.flags & (Flag.RECONF_SENT | Flag.RECONF_INPROG))
        for slave in list(master.slaves.values()):
            if in_progress >= master.parallel_syncs:
                break
            if slave.flags & (Flag.PROMOTED | Flag.RECONF_DONE):
                continue
            if (slave.flags & Flag.RECONF_SENT
                    and now - slave.slave_reconf_sent_time > self.timings.slave_reconf_timeout):
                self._event(LogLevel.NOTICE, "-slave-reconf-sent-timeout", slave)
                slave.flags &= ~Flag.RECONF_SENT
                slave.flags |= Flag.RECONF_DONE
            if slave.flags & (Flag.RECONF_SENT | Flag.RECONF_INPROG):
                continue
            if slave.link.disconnected:
                continue
            if self._send_slaveof(slave, promoted.addr):
                self._send_info(slave, now)
                slave.flags |= Flag.RECONF_SENT
                slave.slave_reconf_sent_time = now
                self._event(LogLevel.NOTICE, "+slave-reconf-sent", slave)
                in_progress += 1
        self._failover_detect_end(master, now)

    def _failover_detect_end(self, master: Instance, now: int) -> None:
        promoted = master.promoted_slave
        if promoted is None or promoted.flags & Flag.S_DOWN:
            return
        elapsed = now - master.failover_state_change_time
        not_reconfigured = sum(
            1 for s in master.slaves.values()
            if not s.flags & (Flag.PROMOTED | Flag.RECONF_DONE) and not s.flags & Flag.S_DOWN
        )
        timeout = elapsed > master.failover_timeout
        if timeout:
            not_reconfigured = 0
            self._event(LogLevel.WARNING, "+failover-end-for-timeout", master)
        if not_reconfigured == 0:
            self._event(LogLevel.WARNING, "+failover-end", master)
            master.failover_state = FailoverState.UPDATE_CONFIG
            master.failover_state_change_time = now
        if timeout:
            for slave in master.slaves.values():
                if slave.flags & (Flag.PROMOTED | Flag.RECONF_DONE | Flag.RECONF_SENT):
                    continue
                if slave.link.disconnected:
                    continue
                if self._send_slaveof(slave, promoted.addr):
                    self._event(LogLevel.NOTICE, "+slave-reconf-sent-be", slave)
                    slave.flags |= Flag.RECONF_SENT

    def _switch_to_promoted(self, master: Instance, now: int) -> None:
        ref = master.promoted_slave or master
        self._event(LogLevel.WARNING, "+switch-master", master,
                    f"{master.name} {self._announce_host(master.addr)} {master.addr.port} "
                    f"{self._announce_host(ref.addr)} {ref.addr.port}", with_instance=False)
        self._reset_and_change_address(master, ref.addr.hostname, ref.addr.port, now)

    # ------------------------------------------------------------------
    # Reset
    # ------------------------------------------------------------------

    def reset_master(self, master: Instance, now: int, *, keep_sentinels: bool = False,
                     generate_event: bool = False) -> None:
        for slave in list(master.slaves.values()):
            self.release_instance(slave)
        master.slaves = {}
        if not keep_sentinels:
            for si in list(master.sentinels.values()):
                self.release_instance(si)
            master.sentinels = {}
        else:
            # What peers said about the master was about the old address: Redis
            # keeps those flags for up to 5 s, and a new master briefly
            # unreachable after a switch would reach ODOWN on stale opinions.
            for si in master.sentinels.values():
                si.flags &= ~Flag.MASTER_DOWN
                si.ask_sent_time = 0
        self._close_link(master.link)
        master.flags &= Flag.MASTER
        master.leader = None
        master.failover_state = FailoverState.NONE
        master.failover_state_change_time = 0
        master.failover_start_time = 0
        master.failover_not_before = 0
        master.odown_start_not_before = 0
        master.promoted_slave = None
        master.runid = None
        master.slave_master_host = None
        link = master.link
        link.act_ping_time = now
        link.last_ping_time = 0
        link.last_avail_time = now
        link.last_pong_time = now
        master.role_reported_time = now
        master.role_reported = Flag.MASTER
        if generate_event:
            self._event(LogLevel.WARNING, "+reset-master", master)

    def _reset_and_change_address(self, master: Instance, hostname: str, port: int, now: int) -> bool:
        try:
            new_addr = self.make_addr(hostname, port, accept_unresolved=False)
        except CreateError:
            return False
        keep = [s.addr.copy() for s in master.slaves.values() if not s.addr.same_as(new_addr)]
        if not new_addr.same_as(master.addr):
            keep.append(master.addr.copy())
        self.reset_master(master, now, keep_sentinels=True)
        master.addr = new_addr
        master.link.last_reconn_time = 0  # a new address: connect at once
        master.o_down_since_time = 0
        master.s_down_since_time = 0
        master.info_refresh = 0  # ask the new master for INFO as soon as it is connected
        master.info = None
        for addr in keep:
            try:
                slave = self.create_instance(None, Flag.SLAVE, addr.hostname, addr.port, master.quorum, master, now)
            except CreateError:
                continue
            self._event(LogLevel.NOTICE, "+slave", slave)
        self._flush()
        return True

    # ------------------------------------------------------------------
    # Persistence
    # ------------------------------------------------------------------

    def to_config(self) -> SentinelConfig:
        """The configuration to write back to sentinel.conf right now."""
        masters = []
        for master in self.masters.values():
            maddr = self.current_master_addr(master)
            replicas = []
            for slave in master.slaves.values():
                addr = master.addr if slave.addr.same_as(maddr) else slave.addr
                replicas.append(KnownReplica(host=self._announce_host(addr), port=addr.port))
            sentinels = [KnownSentinel(host=self._announce_host(si.addr), port=si.addr.port, runid=si.runid)
                         for si in master.sentinels.values() if si.runid]
            masters.append(MasterConfig(
                name=master.name,
                host=self._announce_host(maddr),
                port=maddr.port,
                quorum=master.quorum,
                down_after_ms=master.down_after_period,
                failover_timeout_ms=master.failover_timeout,
                parallel_syncs=master.parallel_syncs,
                notification_script=master.notification_script,
                client_reconfig_script=master.client_reconfig_script,
                auth_pass=master.auth_pass,
                auth_user=master.auth_user,
                master_reboot_down_after_ms=master.master_reboot_down_after_period,
                config_epoch=master.config_epoch,
                leader_epoch=master.leader_epoch,
                known_replicas=replicas,
                known_sentinels=sentinels,
                rename_commands=dict(master.renamed_commands),
            ))
        return self.config.model_copy(update={
            "myid": self.myid,
            "current_epoch": self.current_epoch,
            "announce_ip": self.announce_ip,
            "announce_port": self.announce_port,
            "resolve_hostnames": self.resolve_hostnames,
            "announce_hostnames": self.announce_hostnames,
            "deny_scripts_reconfig": self.deny_scripts_reconfig,
            "sentinel_user": self.sentinel_user,
            "sentinel_pass": self.sentinel_pass,
            "masters": masters,
        })
