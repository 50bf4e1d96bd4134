"""The failover report: what happened, when, and what it cost the writers.

Built from what an `Observer` (lab/watch.py) collected: the fault (from the
fault log), the sentinels' events, the nodes' roles and sync counters, and
the probe writes. `Report.text()` is the terminal version, `Report.to_dict()`
the JSON one, lab/svg.py draws it. Times are time.time() seconds; the text
shows them relative to the fault (or to the start of the watch).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

from hakv.lab.faults import wall_ms

NET_ERRORS = (OSError, ConnectionError, TimeoutError)


@dataclass
class Report:
    master_name: str
    started: float
    ended: float
    initial_primary: str | None = None
    fault: dict | None = None          # verb, member, at, role, detail
    new_primary: str | None = None
    # milestones (time.time(), None when not seen)
    sdown: dict = field(default_factory=dict)     # sentinel -> first +sdown of the primary
    odown_at: float | None = None
    odown_by: str | None = None
    try_failover_at: float | None = None
    votes: list = field(default_factory=list)     # {"at", "sentinel", "leader", "epoch"}
    elected_at: float | None = None
    leader: str | None = None
    selected_at: float | None = None
    promoted_at: float | None = None
    switch_at: float | None = None
    failover_end_at: float | None = None
    first_write_new_at: float | None = None
    first_write_new_seq: int | None = None
    last_write_old_at: float | None = None        # last write the old primary accepted
    last_ok_before_gap_at: float | None = None    # last accepted write before the first new one
    # the writers' bill
    writes_sent: int = 0
    writes_acked: int = 0
    writes_failed: int = 0
    acked_old_wait: int = 0       # acknowledged by the old primary, WAIT said >= 1 replica
    acked_old_nowait: int = 0     # acknowledged by the old primary only
    lost_wait: list = field(default_factory=list)     # seqs missing on the new primary
    lost_nowait: list = field(default_factory=list)
    checked_on: str | None = None
    check_error: str | None = None
    resyncs: dict = field(default_factory=dict)   # node -> {"full", "partial", "partial_err"}
    final_roles: dict = field(default_factory=dict)
    events: list = field(default_factory=list)
    role_history: dict = field(default_factory=dict)
    writes: list = field(default_factory=list)    # [done, acked|None, member, waited, replicas]

    # -- derived numbers (seconds)

    @property
    def t0(self) -> float:
        return self.fault["at"] if self.fault else self.started

    @property
    def first_sdown_at(self) -> float | None:
        return min(self.sdown.values()) if self.sdown else None

    def since_fault(self, t: float | None) -> float | None:
        return None if t is None else t - self.t0

    @property
    def detection_s(self) -> float | None:
        """Fault -> the first sentinel's +sdown of the primary."""
        return self.since_fault(self.first_sdown_at) if self.fault else None

    @property
    def first_write_s(self) -> float | None:
        """Fault -> the first write accepted by the new primary."""
        return self.since_fault(self.first_write_new_at) if self.fault else None

    @property
    def unavailable_s(self) -> float | None:
        """The writers' gap: last accepted write before the new primary's first one,
        to that first one."""
        if self.first_write_new_at is None or self.last_ok_before_gap_at is None:
            return None
        return self.first_write_new_at - self.last_ok_before_gap_at

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(t0=self.t0, detection_s=self.detection_s, first_write_s=self.first_write_s,
                 unavailable_s=self.unavailable_s, first_sdown_at=self.first_sdown_at)
        return d

    # -- text

    def milestones(self) -> list[tuple[str, float, str]]:
        """(label, time, detail) in time order, for the text and the SVG."""
        out = []
        if self.fault:
            out.append(("fault", self.fault["at"], "%s %s%s" % (
                self.fault["verb"], self.fault["member"],
                " (%s)" % self.fault["role"] if self.fault.get("role") else "")))
        if self.sdown:
            first = min(self.sdown, key=self.sdown.get)
            out.append(("+sdown", self.sdown[first], "first by %s" % first))
        if self.odown_at:
            out.append(("+odown", self.odown_at, "by %s" % self.odown_by))
        if self.elected_at:
            out.append(("elected", self.elected_at, "leader %s" % self.leader))
        if self.promoted_at:
            out.append(("+promoted-slave", self.promoted_at, str(self.new_primary)))
        if self.switch_at:
            out.append(("+switch-master", self.switch_at, "%s -> %s" % (
                self.initial_primary, self.new_primary)))
        if self.first_write_new_at:
            out.append(("first write", self.first_write_new_at,
                        "write #%s on %s" % (self.first_write_new_seq, self.new_primary)))
        return sorted(out, key=lambda m: m[1])

    def _rel(self, t: float | None) -> str:
        if t is None:
            return "-"
        return "%+.3fs" % (t - self.t0)

    def text(self) -> str:
        L = []
        L.append("failover report for %s (%s .. %s)" % (
            self.master_name, wall_ms(self.started), wall_ms(self.ended)))
        L.append("  primary at start: %s; primary now: %s" % (
            self.initial_primary, self.new_primary or self.initial_primary))
        if self.fault:
            f = self.fault
            L.append("  fault injected    %s  %s %s%s  %s" % (
                wall_ms(f["at"]), f["verb"], f["member"],
                " (%s)" % f["role"] if f.get("role") else "", f.get("detail", "")))
        else:
            L.append("  fault injected    (none in the fault log; times are from the start)")
        if self.sdown:
            order = sorted(self.sdown.items(), key=lambda kv: kv[1])
            L.append("  +sdown            %s  %s" % (self._rel(order[0][1]), ", ".join(
                "%s %s" % (s, self._rel(t)) for s, t in order)))
        else:
            L.append("  +sdown            -")
        L.append("  +odown            %s  %s" % (self._rel(self.odown_at), self.odown_by or ""))
        if self.try_failover_at:
            L.append("  +try-failover     %s" % self._rel(self.try_failover_at))
        if self.votes:
            L.append("  votes             %s" % ", ".join(
                "%s->%s %s" % (v["sentinel"], v["leader"], self._rel(v["at"]))
                for v in self.votes))
        L.append("  +elected-leader   %s  %s" % (self._rel(self.elected_at), self.leader or ""))
        L.append("  +promoted-slave   %s  %s" % (self._rel(self.promoted_at),
                                                self.new_primary or ""))
        L.append("  +switch-master    %s  %s" % (self._rel(self.switch_at), "%s -> %s" % (
            self.initial_primary, self.new_primary) if self.switch_at else ""))
        L.append("  first write on the new primary %s%s" % (
            self._rel(self.first_write_new_at),
            "  (write #%s)" % self.first_write_new_seq if self.first_write_new_seq else ""))
        L.append("")
        if self.detection_s is not None:
            L.append("  detection (fault -> first +sdown)        %7.3f s" % self.detection_s)
        if self.first_write_s is not None:
            L.append("  fault -> first write on the new primary  %7.3f s" % self.first_write_s)
        if self.unavailable_s is not None:
            L.append("  write unavailability (last ok -> first ok on new) %7.3f s"
                     % self.unavailable_s)
        L.append("  probe writes: %d sent, %d acknowledged, %d failed" % (
            self.writes_sent, self.writes_acked, self.writes_failed))
        if self.checked_on:
            L.append("  acknowledged by %s and missing on %s:" % (self.initial_primary,
                                                                  self.checked_on))
            L.append("    with WAIT 1 (>= 1 replica confirmed): %d of %d%s" % (
                len(self.lost_wait), self.acked_old_wait, _seqs(self.lost_wait)))
            L.append("    without (primary only):               %d of %d%s" % (
                len(self.lost_nowait), self.acked_old_nowait, _seqs(self.lost_nowait)))
        elif self.check_error:
            L.append("  lost writes: not checked (%s)" % self.check_error)
        if self.resyncs:
            L.append("  resyncs served (INFO stats deltas): " + "; ".join(
                "%s %d partial, %d full%s" % (n, r["partial"], r["full"],
                                              ", %d partial refused" % r["partial_err"]
                                              if r["partial_err"] else "")
                for n, r in self.resyncs.items()))
        if self.final_roles:
            L.append("  now: " + "; ".join("%s %s" % kv for kv in self.final_roles.items()))
        return "\n".join(L)


def _seqs(seqs: list) -> str:
    if not seqs:
        return ""
    shown = ", ".join("#%d" % s for s in seqs[:10])
    return "  (%s%s)" % (shown, ", ..." if len(seqs) > 10 else "")


async def build_report(obs) -> Report:
    """The report of what `obs` (a watch.Observer) saw until now."""
    from hakv.lab.watch import describe_node

    r = Report(obs.backend.master_name, obs.started, time.time(),
               initial_primary=obs.initial_primary)
    faults = [e for e in obs.events if e.source == "fault"]
    if faults:
        f = faults[0]
        r.fault = {"verb": f.kind, "member": f.data.get("member"), "at": f.at,
                   "role": f.data.get("role", ""), "detail": f.data.get("detail", "")}
    t_from = r.fault["at"] if r.fault else obs.started
    old = obs.initial_primary
    target = r.fault["member"] if r.fault else None
    for ev in sorted(obs.events, key=lambda e: e.at):
        if ev.at < t_from - 0.001 or ev.source in ("fault", "probe"):
            continue
        d = ev.data
        about_primary = d.get("type") == "master"
        # detection: the faulted member's +sdown (the primary's when no fault is logged)
        about_target = d.get("member") == target if target else about_primary
        if ev.kind == "+sdown" and about_target and ev.source not in r.sdown \
                and r.switch_at is None:
            r.sdown[ev.source] = ev.at
        elif ev.kind == "+odown" and about_primary and r.odown_at is None:
            r.odown_at, r.odown_by = ev.at, ev.source
        elif ev.kind == "+try-failover" and r.try_failover_at is None:
            r.try_failover_at = ev.at
        elif ev.kind == "+vote-for-leader" and r.switch_at is None:
            args = d.get("args") or ["", ""]
            r.votes.append({"at": ev.at, "sentinel": ev.source, "leader": d.get("leader"),
                            "epoch": args[1] if len(args) > 1 else ""})
        elif ev.kind == "+elected-leader" and r.elected_at is None:
            r.elected_at, r.leader = ev.at, ev.source
        elif ev.kind == "+selected-slave" and r.selected_at is None:
            r.selected_at = ev.at
        elif ev.kind == "+promoted-slave" and r.promoted_at is None:
            r.promoted_at = ev.at
            r.new_primary = r.new_primary or d.get("member")
        elif ev.kind == "+failover-end" and r.failover_end_at is None:
            r.failover_end_at = ev.at
        elif ev.kind == "+switch-master" and r.switch_at is None:
            r.switch_at = ev.at
            r.new_primary = d.get("new") or r.new_primary
            old = d.get("old") or old
    if r.initial_primary is None:
        r.initial_primary = old

    writes = obs.probe.writes if obs.probe else []
    r.writes = [[w.done or w.sent, w.acked, w.member, w.waited, w.replicas] for w in writes]
    r.writes_sent = sum(1 for w in writes if w.key)
    r.writes_acked = sum(1 for w in writes if w.acked is not None)
    r.writes_failed = sum(1 for w in writes if w.acked is None)
    old_acked = [w for w in writes if w.acked is not None and w.member == r.initial_primary]
    if old_acked:
        r.last_write_old_at = max(w.acked for w in old_acked)
    if r.new_primary and r.new_primary != r.initial_primary:
        firsts = [w for w in writes if w.acked is not None and w.member == r.new_primary
                  and w.acked >= t_from]
        if firsts:
            first = min(firsts, key=lambda w: w.acked)
            r.first_write_new_at, r.first_write_new_seq = first.acked, first.seq
            before = [w.acked for w in writes if w.acked is not None and w.acked < first.acked
                      and w.member != r.new_primary]
            r.last_ok_before_gap_at = max(before) if before else None
        # what the old primary acknowledged, is it on the new one?
        r.acked_old_wait = sum(1 for w in old_acked if w.wait_confirmed)
        r.acked_old_nowait = len(old_acked) - r.acked_old_wait
        try:
            present = await obs.read_back(r.new_primary, [w.key for w in old_acked])
            r.checked_on = r.new_primary
            for w in old_acked:
                if w.key not in present:
                    (r.lost_wait if w.wait_confirmed else r.lost_nowait).append(w.seq)
        except (NET_ERRORS + (Exception,)) as exc:  # an unreachable node: say so, go on
            r.check_error = str(exc) or exc.__class__.__name__

    for name, now in obs.nodes.items():
        first = obs.first_stats.get(name)
        if first is not None and now.reachable:
            def delta(a: int, b: int) -> int:
                return b - a if b >= a else b   # the counter restarted with the process
            d = {"full": delta(first.sync_full, now.sync_full),
                 "partial": delta(first.sync_partial_ok, now.sync_partial_ok),
                 "partial_err": delta(first.sync_partial_err, now.sync_partial_err)}
            if any(d.values()):
                r.resyncs[name] = d
        r.final_roles[name] = describe_node(now)
    r.events = [e.to_dict() for e in obs.events]
    r.role_history = {k: list(v) for k, v in obs.role_history.items()}
    return r
