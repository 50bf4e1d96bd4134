"""The SENTINEL command family, the sentinel's PUBLISH, ROLE and INFO section.

Mixed into SentinelState. Replies are plain Python values (see replies.py);
instance descriptions are dicts whose values are strings, in Redis's field
order, because Redis sends those numbers as bulk strings.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from hakv.common.glob import glob_match

from .actions import HELLO_CHANNEL, CommandResult, Log, LogLevel
from .instances import Flag, Instance
from .replies import (
    FLUSH_FAILED,
    NO_SUCH_MASTER,
    NOT_AN_INTEGER,
    NULL_ARRAY,
    OK,
    Err,
    Status,
    wrong_arity,
)

if TYPE_CHECKING:  # pragma: no cover
    from .state import SentinelState

HELP_LINES = (
    "CKQUORUM <master-name>",
    "    Check if the current Sentinel configuration is able to reach the quorum",
    "    needed to failover a master and the majority needed to authorize the",
    "    failover.",
    "CONFIG SET <param> <value>",
    "    Set a global Sentinel configuration parameter.",
    "CONFIG GET <param>",
    "    Get global Sentinel configuration parameter.",
    "DEBUG [<param> <value> ...]",
    "    Show a list of configurable time parameters and their values (milliseconds).",
    "    Or update current configurable parameters values (one or more).",
    "GET-MASTER-ADDR-BY-NAME <master-name>",
    "    Return the ip and port number of the master with that name.",
    "FAILOVER <master-name>",
    "    Manually failover a master node without asking for agreement from other",
    "    Sentinels",
    "FLUSHCONFIG",
    "    Force Sentinel to rewrite its configuration on disk, including the current",
    "    Sentinel state.",
    "INFO-CACHE <master-name>",
    "    Return last cached INFO output from masters and all its replicas.",
    "IS-MASTER-DOWN-BY-ADDR <ip> <port> <current-epoch> <runid>",
    "    Check if the master specified by ip:port is down from current Sentinel's",
    "    point of view.",
    "MASTER <master-name>",
    "    Show the state and info of the specified master.",
    "MASTERS",
    "    Show a list of monitored masters and their state.",
    "MONITOR <name> <ip> <port> <quorum>",
    "    Start monitoring a new master with the specified name, ip, port and quorum.",
    "MYID",
    "    Return the ID of the Sentinel instance.",
    "PENDING-SCRIPTS",
    "    Get pending scripts information.",
    "REMOVE <master-name>",
    "    Remove master from Sentinel's monitor list.",
    "REPLICAS <master-name>",
    "    Show a list of replicas for this master and their state.",
    "RESET <pattern>",
    "    Reset masters for specific master name matching this pattern.",
    "SENTINELS <master-name>",
    "    Show a list of Sentinel instances for this master and their state.",
    "SET <master-name> <option> <value> [<option> <value> ...]",
    "    Set configuration parameters for certain masters.",
    "SIMULATE-FAILURE [CRASH-AFTER-ELECTION] [CRASH-AFTER-PROMOTION] [HELP]",
    "    Simulate a Sentinel crash.",
)

# subcommand -> arity (Redis's command table: exact if > 0, minimum if < 0)
ARITY = {
    "ckquorum": 3, "config": -3, "debug": -2, "failover": 3, "flushconfig": 2,
    "get-master-addr-by-name": 3, "help": 2, "info-cache": -3, "is-master-down-by-addr": 6,
    "master": 3, "masters": 2, "monitor": 6, "myid": 2, "pending-scripts": 2, "remove": 3,
    "replicas": 3, "reset": 3, "sentinels": 3, "set": -5, "simulate-failure": -3, "slaves": 3,
}


def _s(value: object) -> str:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "surrogateescape")
    return str(value)


def _parse_int(text: str) -> int | None:
    try:
        value = int(text, 10)
    except ValueError:
        return None
    if text.strip() != text or text.startswith("+") or not -(2**63) <= value < 2**63:
        return None
    return value


class CommandsMixin:
    """SENTINEL <subcommand> ... implemented over SentinelState's data."""

    # ------------------------------------------------------------------
    # Dispatch
    # ------------------------------------------------------------------

    def sentinel_command(self: SentinelState, args: Sequence[str | bytes], now: int) -> CommandResult:
        """`args` is the argv after "SENTINEL" (subcommand first)."""
        argv = [_s(a) for a in args]
        self._out = []
        if not argv:
            return CommandResult(Err("ERR wrong number of arguments for 'sentinel' command"))
        sub = argv[0].lower()
        arity = ARITY.get(sub)
        if arity is None:
            return CommandResult(Err(f"ERR unknown subcommand '{argv[0][:128]}'. Try SENTINEL HELP."))
        argc = len(argv) + 1
        if (arity > 0 and argc != arity) or (arity < 0 and argc < -arity):
            return CommandResult(wrong_arity(sub))
        handler = getattr(self, "_cmd_" + sub.replace("-", "_"))
        result = handler(argv[1:], now)
        if not isinstance(result, CommandResult):
            result = CommandResult(result)
        result.actions = self._drain() + result.actions
        return result

    def publish(self: SentinelState, channel: str | bytes, payload: str | bytes, now: int) -> CommandResult:
        """Sentinel's PUBLISH: only hello messages, which are processed."""
        self._out = []
        if _s(channel) != HELLO_CHANNEL:
            return CommandResult(Err("ERR Only HELLO messages are accepted by Sentinel instances."))
        self._process_hello(_s(payload), now)
        return CommandResult(1, self._drain())

    def role(self: SentinelState) -> list:
        return ["sentinel", list(self.masters)]

    def info_section(self: SentinelState, now: int) -> str:
        """The "# Sentinel" section of INFO (lines joined by CRLF, no trailing CRLF)."""
        lines = [
            "# Sentinel",
            f"sentinel_masters:{len(self.masters)}",
            f"sentinel_tilt:{1 if self.tilt else 0}",
            f"sentinel_tilt_since_seconds:{(now - self.tilt_start_time) // 1000 if self.tilt else -1}",
            f"sentinel_running_scripts:{self.scripts.running}",
            f"sentinel_scripts_queue_length:{len(self.scripts.jobs)}",
            f"sentinel_simulate_failure_flags:{self.simfailure_flags}",
        ]
        for index, master in enumerate(self.masters.values()):
            status = "odown" if master.flags & Flag.O_DOWN else "sdown" if master.flags & Flag.S_DOWN else "ok"
            lines.append(
                f"master{index}:name={master.name},status={status},"
                f"address={self._announce_host(master.addr)}:{master.addr.port},"
                f"slaves={len(master.slaves)},sentinels={len(master.sentinels) + 1}"
            )
        return "\r\n".join(lines)

    # ------------------------------------------------------------------
    # Instance descriptions
    # ------------------------------------------------------------------

    def instance_fields(self: SentinelState, ri: Instance, now: int) -> dict[str, str]:
        link = ri.link
        addr = ri.addr
        flags = ri.flag_string()
        if ri.is_master and self.current_master_addr(ri) is not ri.addr:
            # hakv: once the promoted replica confirmed, describe the master at
            # its new address (as GET-MASTER-ADDR-BY-NAME already does), without
            # the down flags that belong to the old address, so clients such as
            # redis-py's Sentinel find the new master before the replicas resync.
            addr = self.current_master_addr(ri)
            flags = ",".join(f for f in flags.split(",") if f not in ("s_down", "o_down", "disconnected"))
        out: dict[str, str] = {
            "name": ri.name,
            "ip": self._announce_host(addr),
            "port": str(addr.port),
            "runid": ri.runid or "",
            "flags": flags,
            "link-pending-commands": str(link.pending_commands),
            "link-refcount": str(link.refcount),
        }
        if ri.flags & Flag.FAILOVER_IN_PROGRESS:
            out["failover-state"] = ri.failover_state.label
        out["last-ping-sent"] = str(now - link.act_ping_time if link.act_ping_time else 0)
        out["last-ok-ping-reply"] = str(now - link.last_avail_time)
        out["last-ping-reply"] = str(now - link.last_pong_time)
        if ri.flags & Flag.S_DOWN:
            out["s-down-time"] = str(now - ri.s_down_since_time)
        if ri.flags & Flag.O_DOWN:
            out["o-down-time"] = str(now - ri.o_down_since_time)
        out["down-after-milliseconds"] = str(ri.down_after_period)
        if ri.flags & (Flag.MASTER | Flag.SLAVE):
            out["info-refresh"] = str(now - ri.info_refresh if ri.info_refresh else 0)
            out["role-reported"] = "master" if ri.role_reported == Flag.MASTER else "slave"
            out["role-reported-time"] = str(now - ri.role_reported_time)
        if ri.is_master:
            out["config-epoch"] = str(ri.config_epoch)
            out["num-slaves"] = str(len(ri.slaves))
            out["num-other-sentinels"] = str(len(ri.sentinels))
            out["quorum"] = str(ri.quorum)
            out["failover-timeout"] = str(ri.failover_timeout)
            out["parallel-syncs"] = str(ri.parallel_syncs)
            if ri.notification_script:
                out["notification-script"] = ri.notification_script
            if ri.client_reconfig_script:
                out["client-reconfig-script"] = ri.client_reconfig_script
        if ri.is_slave:
            out["master-link-down-time"] = str(ri.master_link_down_time)
            out["master-link-status"] = "ok" if ri.slave_master_link_up else "err"
            out["master-host"] = ri.slave_master_host or "?"
            out["master-port"] = str(ri.slave_master_port)
            out["slave-priority"] = str(ri.slave_priority)
            out["slave-repl-offset"] = str(ri.slave_repl_offset)
            out["replica-announced"] = str(ri.replica_announced)
        if ri.is_sentinel:
            out["last-hello-message"] = str(now - ri.last_hello_time)
            out["voted-leader"] = ri.leader or "?"
            out["voted-leader-epoch"] = str(ri.leader_epoch)
        return out

    def _instances_reply(self: SentinelState, table: dict[str, Instance], now: int) -> list:
        return [self.instance_fields(ri, now) for ri in table.values()
                if not (ri.is_slave and not ri.replica_announced)]

    # ------------------------------------------------------------------
    # Subcommands
    # ------------------------------------------------------------------

    def _cmd_help(self: SentinelState, args: list[str], now: int):
        return ([Status("SENTINEL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:")]
                + [Status(line) for line in HELP_LINES]
                + [Status("HELP"), Status("    Prints this help.")])

    def _cmd_masters(self: SentinelState, args: list[str], now: int):
        return self._instances_reply(self.masters, now)

    def _cmd_master(self: SentinelState, args: list[str], now: int):
        master = self.masters.get(args[0])
        return self.instance_fields(master, now) if master else NO_SUCH_MASTER

    def _cmd_replicas(self: SentinelState, args: list[str], now: int):
        master = self.masters.get(args[0])
        return self._instances_reply(master.slaves, now) if master else NO_SUCH_MASTER

    _cmd_slaves = _cmd_replicas

    def _cmd_sentinels(self: SentinelState, args: list[str], now: int):
        master = self.masters.get(args[0])
        return self._instances_reply(master.sentinels, now) if master else NO_SUCH_MASTER

    def _cmd_myid(self: SentinelState, args: list[str], now: int):
        return self.myid

    def _cmd_get_master_addr_by_name(self: SentinelState, args: list[str], now: int):
        master = self.masters.get(args[0])
        if master is None:
            return NULL_ARRAY
        addr = self.current_master_addr(master)
        return [self._announce_host(addr), str(addr.port)]

    def _cmd_is_master_down_by_addr(self: SentinelState, args: list[str], now: int):
        ip, port_text, epoch_text, runid = args
        port = _parse_int(port_text)
        epoch = _parse_int(epoch_text)
        if port is None or epoch is None:
            return NOT_AN_INTEGER
        ri = self._find_by_addr_runid(self.masters, ip, port, None)
        is_down = bool(not self.tilt and ri is not None and ri.flags & Flag.S_DOWN and ri.is_master)
        if is_down and ri is not None and not ri.flags & Flag.O_DOWN:
            # A peer asks because it thinks the master is down too: ask the
            # peers that said "up" again now rather than at the next slot.
            self._reask_doubting_peers(ri, now)
        leader: str | None = None
        leader_epoch = 0
        if ri is not None and ri.is_master and runid != "*":
            if runid.lower() == self.myid.lower():
                # Only a process sharing our ID asks us to vote for "ourselves".
                self._out.append(Log(LogLevel.WARNING,
                                     f"WARNING: a vote was requested for this sentinel's own ID {self.myid} "
                                     "by another process: a sentinel.conf was copied. Not voting."))
                leader, leader_epoch = ri.leader, ri.leader_epoch
            else:
                leader, leader_epoch = self.vote_leader(ri, max(epoch, 0), runid, now)
        return [1 if is_down else 0, leader or "*", leader_epoch]

    def _cmd_reset(self: SentinelState, args: list[str], now: int):
        count = 0
        for master in list(self.masters.values()):
            if glob_match(args[0].encode(), master.name.encode()):
                self.reset_master(master, now, generate_event=True)
                count += 1
        if count:
            self._flush()
        return count

    def _cmd_failover(self: SentinelState, args: list[str], now: int):
        master = self.masters.get(args[0])
        if master is None:
            return NO_SUCH_MASTER
        if master.flags & Flag.FAILOVER_IN_PROGRESS:
            return Err("INPROG Failover already in progress")
        if self.select_slave(master, now) is None:
            return Err("NOGOODSLAVE No suitable replica to promote")
        self._out.append(Log(LogLevel.WARNING, f"Executing user requested FAILOVER of '{master.name}'"))
        self.start_failover(master, now)
        master.flags |= Flag.FORCE_FAILOVER
        self._failover_step(master, now)
        return OK

    def _cmd_pending_scripts(self: SentinelState, args: list[str], now: int):
        return self.scripts.describe(now)

    def _cmd_monitor(self: SentinelState, args: list[str], now: int):
        name, host, port_text, quorum_text = args
        quorum = _parse_int(quorum_text)
        if quorum is None:
            return Err("ERR Invalid quorum")
        port = _parse_int(port_text)
        if port is None:
            return Err("ERR Invalid port")
        if quorum <= 0:
            return Err("ERR Quorum must be 1 or greater.")
        if self._resolve(host) is None:
            return Err("ERR Invalid IP address or hostname specified")
        from .state import CreateError

        try:
            master = self.create_instance(name, Flag.MASTER, host, port, quorum, None, now)
        except CreateError as exc:
            return Err(f"ERR {exc}")
        self._flush()
        self._event(LogLevel.WARNING, "+monitor", master, f"quorum {master.quorum}")
        return CommandResult(OK, reply_on_flush_error=FLUSH_FAILED)

    def _cmd_flushconfig(self: SentinelState, args: list[str], now: int):
        self._flush()
        return CommandResult(OK, reply_on_flush_error=FLUSH_FAILED)

    def _cmd_remove(self: SentinelState, args: list[str], now: int):
        master = self.masters.get(args[0])
        if master is None:
            return NO_SUCH_MASTER
        self._event(LogLevel.WARNING, "-monitor", master)
        del self.masters[master.name]
        self.release_instance(master)
        self._flush()
        return CommandResult(OK, reply_on_flush_error=FLUSH_FAILED)

    def _cmd_ckquorum(self: SentinelState, args: list[str], now: int):
        master = self.masters.get(args[0])
        if master is None:
            return NO_SUCH_MASTER
        voters = len(master.sentinels) + 1
        usable = 1 + sum(1 for si in master.sentinels.values() if not si.flags & (Flag.S_DOWN | Flag.O_DOWN))
        no_quorum = usable < master.quorum
        no_auth = usable < voters // 2 + 1
        if not no_quorum and not no_auth:
            return Status(f"OK {usable} usable Sentinels. Quorum and failover authorization can be reached")
        text = f"NOQUORUM {usable} usable Sentinels. "
        if no_quorum:
            text += "Not enough available Sentinels to reach the specified quorum for this master"
        if no_auth:
            if no_quorum:
                text += ". "
            text += "Not enough available Sentinels to reach the majority and authorize a failover"
        return Err(text)

    def _drop_instance_connections(self: SentinelState, master: Instance) -> None:
        self._close_link(master.link)
        for slave in master.slaves.values():
            self._close_link(slave.link)

    def _cmd_set(self: SentinelState, args: list[str], now: int):
        master = self.masters.get(args[0])
        if master is None:
            return NO_SUCH_MASTER
        changes = 0
        error: Err | None = None
        j = 1
        while j < len(args):
            option = args[j]
            lowered = option.lower()
            more = len(args) - 1 - j
            start = j
            redacted = False
            if lowered in ("down-after-milliseconds", "failover-timeout", "parallel-syncs", "quorum",
                           "master-reboot-down-after-period") and more > 0:
                j += 1
                value = _parse_int(args[j])
                minimum = 0 if lowered == "master-reboot-down-after-period" else 1
                if value is None or value < minimum:
                    error = Err(f"ERR Invalid argument '{args[j]}' for SENTINEL SET '{option}'")
                    break
                if lowered == "down-after-milliseconds":
                    master.down_after_period = value
                    self.propagate_down_after(master)
                elif lowered == "failover-timeout":
                    master.failover_timeout = value
                elif lowered == "parallel-syncs":
                    master.parallel_syncs = value
                elif lowered == "quorum":
                    master.quorum = value
                else:
                    master.master_reboot_down_after_period = value
            elif lowered in ("notification-script", "client-reconfig-script") and more > 0:
                j += 1
                value_text = args[j]
                if self.deny_scripts_reconfig:
                    error = Err("ERR Reconfiguration of scripts path is denied for security reasons. Check the "
                                "deny-scripts-reconfig configuration directive in your Sentinel configuration")
                    break
                if value_text and not self._is_executable(value_text):
                    error = Err("ERR Notification script seems non existing or non executable"
                                if lowered == "notification-script" else
                                "ERR Client reconfiguration script seems non existing or non executable")
                    break
                if lowered == "notification-script":
                    master.notification_script = value_text or None
                else:
                    master.client_reconfig_script = value_text or None
            elif lowered in ("auth-pass", "auth-user") and more > 0:
                j += 1
                if lowered == "auth-pass":
                    master.auth_pass = args[j] or None
                    redacted = True
                else:
                    master.auth_user = args[j] or None
                self._drop_instance_connections(master)
            elif lowered == "rename-command" and more > 1:
                old_name, new_name = args[j + 1], args[j + 2]
                j += 2
                if not old_name or not new_name:
                    error = Err(f"ERR Invalid argument '{args[j - 1] if not old_name else args[j]}' "
                                f"for SENTINEL SET '{option}'")
                    break
                master.renamed_commands.pop(old_name.upper(), None)
                if old_name.lower() != new_name.lower():
                    master.renamed_commands[old_name.upper()] = new_name
            else:
                error = Err(f"ERR Unknown option or number of arguments for SENTINEL SET '{option}'")
                break
            changes += 1
            shown = args[start:j + 1]
            if redacted:
                shown = [shown[0], "******"]
            self._event(LogLevel.WARNING, "+set", master, " ".join(shown))
            j += 1
        if changes:
            self._flush()
        if error is not None:
            return error
        return CommandResult(OK, reply_on_flush_error=FLUSH_FAILED)

    def _cmd_config(self: SentinelState, args: list[str], now: int):
        action = args[0].lower()
        if action == "set" and len(args) == 3:
            return self._config_set(args[1], args[2])
        if action == "get" and len(args) == 2:
            return self._config_get(args[1])
        return Err("ERR Only SENTINEL CONFIG GET <option> / SET <option> <value> are supported.")

    def _config_get(self: SentinelState, pattern: str) -> dict[str, str]:
        values = {
            "resolve-hostnames": "yes" if self.resolve_hostnames else "no",
            "announce-hostnames": "yes" if self.announce_hostnames else "no",
            "announce-ip": self.announce_ip or "",
            "announce-port": str(self.announce_port),
            "sentinel-user": self.sentinel_user or "",
            "sentinel-pass": self.sentinel_pass or "",
        }
        return {k: v for k, v in values.items() if glob_match(pattern.encode(), k.encode(), nocase=True)}

    def _config_set(self: SentinelState, option: str, value: str):
        lowered = option.lower()
        bad = Err(f"ERR Invalid value '{value}' to SENTINEL CONFIG SET '{option}'")
        drop_sentinel_links = False
        if lowered in ("resolve-hostnames", "announce-hostnames"):
            if value.lower() not in ("yes", "no"):
                return bad
            setattr(self, lowered.replace("-", "_"), value.lower() == "yes")
        elif lowered == "announce-ip":
            self.announce_ip = value or None
        elif lowered == "announce-port":
            port = _parse_int(value)
            if port is None or not 0 <= port <= 65535:
                return bad
            self.announce_port = port
        elif lowered == "sentinel-user":
            self.sentinel_user = value or None
            drop_sentinel_links = True
        elif lowered == "sentinel-pass":
            self.sentinel_pass = value or None
            drop_sentinel_links = True
        else:
            return Err(f"ERR Invalid argument '{option}' to SENTINEL CONFIG SET")
        self._flush()
        if drop_sentinel_links:
            for master in self.masters.values():
                for si in master.sentinels.values():
                    if not si.link.disconnected:
                        self._close_link(si.link)
        return CommandResult(OK, reply_on_flush_error=FLUSH_FAILED)

    def _cmd_info_cache(self: SentinelState, args: list[str], now: int):
        chosen: dict[str, Instance] = {}
        for name in args:
            master = self.masters.get(name)
            if master is not None:
                chosen[master.name] = master
        reply: list = []
        for master in chosen.values():
            entries = [[now - master.info_refresh if master.info_refresh else 0, master.info]]
            for slave in master.slaves.values():
                entries.append([now - slave.info_refresh if slave.info_refresh else 0, slave.info])
            reply.extend([master.name, entries])
        return reply

    def _cmd_simulate_failure(self: SentinelState, args: list[str], now: int):
        from .state import SIMFAILURE_CRASH_AFTER_ELECTION, SIMFAILURE_CRASH_AFTER_PROMOTION

        self.simfailure_flags = 0
        for arg in args:
            lowered = arg.lower()
            if lowered == "crash-after-election":
                self.simfailure_flags |= SIMFAILURE_CRASH_AFTER_ELECTION
                self._out.append(Log(LogLevel.WARNING, "Failure simulation: this Sentinel will crash after "
                                                       "being successfully elected as failover leader"))
            elif lowered == "crash-after-promotion":
                self.simfailure_flags |= SIMFAILURE_CRASH_AFTER_PROMOTION
                self._out.append(Log(LogLevel.WARNING, "Failure simulation: this Sentinel will crash after "
                                                       "promoting the selected replica to master"))
            elif lowered == "help":
                return ["crash-after-election", "crash-after-promotion"]
            else:
                return Err("ERR Unknown failure simulation specified")
        return OK

    def _cmd_debug(self: SentinelState, args: list[str], now: int):
        t = self.timings
        if not args:
            return {name: str(getattr(t, attr)) for name, attr in t.DEBUG_NAMES}
        by_name = {name.lower(): attr for name, attr in t.DEBUG_NAMES}
        updates: dict[str, int] = {}
        j = 0
        while j < len(args):
            option = args[j]
            attr = by_name.get(option.lower())
            if attr is None or j + 1 >= len(args):
                return Err(f"ERR Unknown option or number of arguments for SENTINEL DEBUG '{option}'")
            value = _parse_int(args[j + 1])
            if value is None or value <= 0:
                return Err(f"ERR Invalid argument '{args[j + 1]}' for SENTINEL DEBUG '{option}'")
            updates[attr] = value
            j += 2
        for attr, value in updates.items():
            setattr(t, attr, value)
        return OK
