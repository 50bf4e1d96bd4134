"""The records the sentinel keeps: addresses, links, monitored instances.

These mirror Redis Sentinel's `sentinelAddr`, `instanceLink` and
`sentinelRedisInstance`. All times are milliseconds on the clock the state
machine is driven with.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, IntFlag

from .actions import LinkKind


class Flag(IntFlag):
    MASTER = 1 << 0
    SLAVE = 1 << 1
    SENTINEL = 1 << 2
    S_DOWN = 1 << 3
    O_DOWN = 1 << 4
    MASTER_DOWN = 1 << 5  # a peer sentinel told us it thinks the master is down
    FAILOVER_IN_PROGRESS = 1 << 6
    PROMOTED = 1 << 7
    RECONF_SENT = 1 << 8
    RECONF_INPROG = 1 << 9
    RECONF_DONE = 1 << 10
    FORCE_FAILOVER = 1 << 11
    SCRIPT_KILL_SENT = 1 << 12
    MASTER_REBOOT = 1 << 13


# Order and spelling of the "flags" field of SENTINEL MASTER/REPLICAS/SENTINELS.
FLAG_NAMES: tuple[tuple[Flag, str], ...] = (
    (Flag.S_DOWN, "s_down"),
    (Flag.O_DOWN, "o_down"),
    (Flag.MASTER, "master"),
    (Flag.SLAVE, "slave"),
    (Flag.SENTINEL, "sentinel"),
    # "disconnected" comes from the link and is inserted here
    (Flag.MASTER_DOWN, "master_down"),
    (Flag.FAILOVER_IN_PROGRESS, "failover_in_progress"),
    (Flag.PROMOTED, "promoted"),
    (Flag.RECONF_SENT, "reconf_sent"),
    (Flag.RECONF_INPROG, "reconf_inprog"),
    (Flag.RECONF_DONE, "reconf_done"),
    (Flag.FORCE_FAILOVER, "force_failover"),
    (Flag.SCRIPT_KILL_SENT, "script_kill_sent"),
)


class FailoverState(IntEnum):
    NONE = 0
    WAIT_START = 1
    SELECT_SLAVE = 2
    SEND_SLAVEOF_NOONE = 3
    WAIT_PROMOTION = 4
    RECONF_SLAVES = 5
    UPDATE_CONFIG = 6

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(slots=True)
class Addr:
    """An address as configured (`hostname`) and as resolved (`ip`)."""

    hostname: str
    ip: str
    port: int

    def same_as(self, other: Addr) -> bool:
        return self.port == other.port and (
            self.ip == other.ip or self.hostname.lower() == other.hostname.lower()
        )

    def copy(self) -> Addr:
        return Addr(self.hostname, self.ip, self.port)


@dataclass
class Timings:
    """Sentinel's periods and timeouts (SENTINEL DEBUG can change them)."""

    info_period: int = 10_000
    ping_period: int = 1_000
    ask_period: int = 1_000
    publish_period: int = 2_000
    default_down_after: int = 30_000
    default_failover_timeout: int = 180_000
    tilt_trigger: int = 2_000
    tilt_period: int = 30_000
    slave_reconf_timeout: int = 10_000
    min_link_reconnect_period: int = 15_000
    election_timeout: int = 10_000
    script_max_runtime: int = 60_000
    script_retry_delay: int = 30_000
    # hakv additions (see state.py "Deviations from Redis")
    fast_ask_period: int = 100  # re-ask peers this often while SDOWN but not yet ODOWN
    reconf_info_period: int = 250  # INFO poll of replicas being reconfigured/promoted
    election_stagger: int = 150  # per rank among agreeing sentinels (smallest runid first)
    early_retry_base: int = 100  # after a provably split vote

    # SENTINEL DEBUG names, in the order Redis lists them
    DEBUG_NAMES = (
        ("INFO-PERIOD", "info_period"),
        ("PING-PERIOD", "ping_period"),
        ("ASK-PERIOD", "ask_period"),
        ("PUBLISH-PERIOD", "publish_period"),
        ("DEFAULT-DOWN-AFTER", "default_down_after"),
        ("DEFAULT-FAILOVER-TIMEOUT", "default_failover_timeout"),
        ("TILT-TRIGGER", "tilt_trigger"),
        ("TILT-PERIOD", "tilt_period"),
        ("SLAVE-RECONF-TIMEOUT", "slave_reconf_timeout"),
        ("MIN-LINK-RECONNECT-PERIOD", "min_link_reconnect_period"),
        ("ELECTION-TIMEOUT", "election_timeout"),
        ("SCRIPT-MAX-RUNTIME", "script_max_runtime"),
        ("SCRIPT-RETRY-DELAY", "script_retry_delay"),
    )


@dataclass(eq=False)
class Link:
    """Connection state towards one process, shared by the instances that
    describe the same sentinel under different masters."""

    link_id: int
    kind: LinkKind
    refcount: int = 1
    conn: int = 0  # serial of the current/pending connection, 0 = none
    connecting: bool = False
    disconnected: bool = True
    pending_commands: int = 0
    cc_conn_time: int = 0
    pc_conn_time: int = 0
    pc_last_activity: int = 0
    last_avail_time: int = 0  # last valid PING reply (+PONG, -LOADING, -MASTERDOWN)
    act_ping_time: int = 0  # first PING still unanswered, 0 if none pending
    last_ping_time: int = 0
    last_pong_time: int = 0  # last PING reply of any kind
    last_reconn_time: int = 0
    local_ip: str | None = None  # our address as seen on this connection


@dataclass(eq=False)
class Instance:
    """A monitored master, one of its replicas, or a sentinel watching it."""

    iid: int
    flags: Flag
    name: str
    addr: Addr
    link: Link
    master: Instance | None = None
    runid: str | None = None
    config_epoch: int = 0
    last_pub_time: int = 0
    last_hello_time: int = 0
    last_master_down_reply_time: int = 0
    s_down_since_time: int = 0
    o_down_since_time: int = 0
    down_after_period: int = 30_000
    master_reboot_down_after_period: int = 0
    master_reboot_since_time: int = 0
    info_refresh: int = 0
    renamed_commands: dict[str, str] = field(default_factory=dict)
    role_reported: Flag = Flag(0)
    role_reported_time: int = 0
    slave_conf_change_time: int = 0
    # master only
    sentinels: dict[str, Instance] = field(default_factory=dict)
    slaves: dict[str, Instance] = field(default_factory=dict)
    quorum: int = 1
    parallel_syncs: int = 1
    auth_pass: str | None = None
    auth_user: str | None = None
    # replica only
    master_link_down_time: int = 0
    slave_priority: int = 100
    replica_announced: int = 1
    slave_reconf_sent_time: int = 0
    slave_master_host: str | None = None
    slave_master_port: int = 0
    slave_master_link_up: bool = False
    slave_repl_offset: int = 0
    # failover (on masters); on sentinels: whom that sentinel voted for
    leader: str | None = None
    leader_epoch: int = 0
    failover_epoch: int = 0
    failover_state: FailoverState = FailoverState.NONE
    failover_state_change_time: int = 0
    failover_start_time: int = 0
    failover_timeout: int = 180_000
    failover_delay_logged: int = 0
    promoted_slave: Instance | None = None
    notification_script: str | None = None
    client_reconfig_script: str | None = None
    info: str | None = None  # cached INFO text
    # hakv bookkeeping
    info_sent_time: int = 0  # INFO in flight since (0 = none)
    hello_sent_time: int = 0  # PUBLISH hello in flight since (0 = none)
    ask_sent_time: int = 0  # is-master-down-by-addr in flight since (0 = none)
    failover_not_before: int = 0  # no new failover attempt before this time
    odown_start_not_before: int = 0  # staggered election start (by runid rank)

    @property
    def is_master(self) -> bool:
        return bool(self.flags & Flag.MASTER)

    @property
    def is_slave(self) -> bool:
        return bool(self.flags & Flag.SLAVE)

    @property
    def is_sentinel(self) -> bool:
        return bool(self.flags & Flag.SENTINEL)

    @property
    def type_name(self) -> str:
        if self.flags & Flag.MASTER:
            return "master"
        if self.flags & Flag.SLAVE:
            return "slave"
        if self.flags & Flag.SENTINEL:
            return "sentinel"
        return "unknown"

    def flag_string(self) -> str:
        names = []
        for flag, label in FLAG_NAMES:
            if flag == Flag.MASTER_DOWN and self.link.disconnected:
                names.append("disconnected")
            if self.flags & flag:
                names.append(label)
        if self.link.disconnected and "disconnected" not in names:
            names.append("disconnected")
        return ",".join(names)

    def command(self, name: str) -> str:
        """The name to send for `name`, honouring ``sentinel rename-command``
        (configured on the master, used for its replicas too)."""
        owner = self.master if self.master is not None else self
        return owner.renamed_commands.get(name.upper(), name)
