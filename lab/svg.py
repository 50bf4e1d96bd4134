"""The failover report as one self-contained SVG timeline (no scripts, no
external fonts or styles: it opens in any browser).

Lanes, top to bottom: the milestones (fault, +sdown, +odown, election,
+promoted-slave, +switch-master, first write on the new primary) as dashed
vertical lines; one lane per node with its role over time; one lane per
sentinel with its events (hover a mark for the full text); the probe writes
(one tick per write, colored by who accepted it); then the numbers.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from hakv.lab.faults import wall_ms

WIDTH = 1200
LEFT = 150
RIGHT = 30
LANE = 26
ROLE_COLORS = {"master": "#1f5fa8", "slave": "#8fbbe0", "down": "#c8c8c8", "?": "#e0e0e0"}
MILESTONE_COLORS = {"fault": "#c0392b", "+sdown": "#e67e22", "+odown": "#d35400",
                    "elected": "#8e44ad", "+promoted-slave": "#16a085",
                    "+switch-master": "#27ae60", "first write": "#2c3e50"}
KEY_EVENTS = {"+sdown", "+odown", "+try-failover", "+elected-leader", "+vote-for-leader",
              "+promoted-slave", "+switch-master", "+failover-end", "-sdown", "-odown",
              "+convert-to-slave", "+selected-slave", "+slave-reconf-done"}


def _nice_step(span: float) -> float:
    for step in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300):
        if span / step <= 14:
            return step
    return 600


def fault_periods(report) -> list[tuple[str, str, float, float]]:
    """(member, verb, start, end) for every stop..cont and partition..heal seen."""
    open_: dict[tuple[str, str], float] = {}
    out = []
    for ev in sorted(report.events, key=lambda e: e["at"]):
        if ev["source"] != "fault":
            continue
        member, verb = ev["data"].get("member"), ev["kind"]
        if verb in ("stop", "partition"):
            open_.setdefault((member, verb), ev["at"])
        elif verb in ("cont", "heal") or verb in ("kill", "restart"):
            for undone in (("stop",) if verb == "cont" else ("partition",) if verb == "heal"
                           else ("stop",)):
                start = open_.pop((member, undone), None)
                if start is not None:
                    out.append((member, undone, start, ev["at"]))
    out.extend((m, v, start, report.ended) for (m, v), start in open_.items())
    return out


def render_svg(report) -> str:
    t0 = report.t0
    marks = report.milestones()
    times = [t for _, t, _ in marks]
    lo = min([t0 - 1.0] + times)
    hi = max(times + [t0 + 2.0]) + 1.0
    lo = max(lo, report.started)
    hi = min(max(hi, lo + 1.0), max(report.ended, lo + 1.0))
    span = hi - lo
    plot_w = WIDTH - LEFT - RIGHT

    def x(t: float) -> float:
        return LEFT + (min(max(t, lo), hi) - lo) / span * plot_w

    out: list[str] = []
    y = 0

    def text(xp, yp, s, size=12, anchor="start", color="#222", weight="normal", extra=""):
        out.append('<text x="%.1f" y="%.1f" font-size="%d" text-anchor="%s" fill="%s" '
                   'font-weight="%s"%s>%s</text>' % (xp, yp, size, anchor, color, weight,
                                                      extra, escape(str(s))))

    # -- title and headline numbers
    y = 24
    text(12, y, "hakv failover timeline: %s" % report.master_name, 17, weight="bold")
    y += 20
    head = []
    if report.fault:
        f = report.fault
        head.append("fault: %s %s at %s" % (f["verb"], f["member"], wall_ms(f["at"])))
    if report.detection_s is not None:
        head.append("detection %.3f s" % report.detection_s)
    if report.first_write_s is not None:
        head.append("first write on new primary +%.3f s" % report.first_write_s)
    if report.unavailable_s is not None:
        head.append("write gap %.3f s" % report.unavailable_s)
    text(12, y, "; ".join(head) or "no fault logged", 12, color="#444")

    # -- milestone labels (staggered rows so they do not overlap)
    y += 14
    label_top = y
    rows: list[float] = []
    placed = []
    for label, t, detail in marks:
        xp = x(t)
        width = 7 * len(label) + 50
        row = 0
        while row < len(rows) and rows[row] > xp:
            row += 1
        if row == len(rows):
            rows.append(0)
        rows[row] = xp + width
        placed.append((label, t, detail, xp, row))
    label_rows = max(1, len(rows))
    y = label_top + 16 * label_rows + 6
    lanes_top = y

    # -- axis
    step = _nice_step(span)
    tick = (int((lo - t0) / step) - 1) * step
    axis_y_top = lanes_top
    n_nodes = len(report.role_history)
    events_by_sentinel: dict[str, list] = {}
    for ev in report.events:
        if ev["source"].startswith("sentinel") and ev["kind"] in KEY_EVENTS | {"view"}:
            events_by_sentinel.setdefault(ev["source"], []).append(ev)
    sentinels = sorted(events_by_sentinel)
    lanes_h = LANE * (n_nodes + len(sentinels) + 1) + 30
    grid = []
    while t0 + tick <= hi:
        if t0 + tick >= lo:
            xp = x(t0 + tick)
            grid.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#eee"/>'
                        % (xp, axis_y_top, xp, axis_y_top + lanes_h))
            grid.append('<text x="%.1f" y="%d" font-size="10" text-anchor="middle" '
                        'fill="#777">%+.1fs</text>' % (xp, axis_y_top + lanes_h + 12, tick))
        tick += step
    out.extend(grid)

    # -- node lanes: role over time
    y = lanes_top + 4
    lane_y: dict[str, int] = {}
    for name, hist in report.role_history.items():
        lane_y[name] = y
        text(12, y + 16, name, 12, weight="bold")
        segs = []
        for i, (t, role) in enumerate(hist):
            end = hist[i + 1][0] if i + 1 < len(hist) else report.ended
            if segs and segs[-1][2] == role:
                segs[-1] = (segs[-1][0], end, role)   # same role, another detail: one bar
            else:
                segs.append((t, end, role))
        for start, end, role in segs:
            if end < lo or start > hi:
                continue
            x1, x2 = x(start), x(end)
            color = ROLE_COLORS.get(role, ROLE_COLORS["?"])
            out.append('<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s">'
                       '<title>%s %s from %s</title></rect>'
                       % (x1, y + 3, max(0.5, x2 - x1), LANE - 8, color, escape(name),
                          escape(role), wall_ms(start)))
            if x2 - x1 > 50:
                text(x1 + 4, y + 17, "replica" if role == "slave" else role, 11,
                     color="#fff" if role == "master" else "#222")
        y += LANE
    # -- sentinel lanes: events
    for s in sentinels:
        lane_y[s] = y
        text(12, y + 16, s, 12, weight="bold")
        out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#ddd"/>'
                   % (LEFT, y + 13, WIDTH - RIGHT, y + 13))
        last_label_x = -1e9
        for ev in events_by_sentinel[s]:
            if not (lo <= ev["at"] <= hi):
                continue
            xp = x(ev["at"])
            color = MILESTONE_COLORS.get(ev["kind"], "#555")
            if ev["kind"] == "+elected-leader":
                color = MILESTONE_COLORS["elected"]
            out.append('<circle cx="%.1f" cy="%d" r="4" fill="%s"><title>%s %s %s</title>'
                       '</circle>' % (xp, y + 13, color, wall_ms(ev["at"]),
                                      escape(ev["kind"]), escape(ev["text"])))
            if xp - last_label_x > 70 and ev["kind"] != "view":
                text(xp + 5, y + 9, ev["kind"], 9, color="#555")
                last_label_x = xp
        y += LANE
    # -- probe writes
    text(12, y + 16, "probe writes", 12, weight="bold")
    for sent, acked, member, waited, replicas in report.writes:
        t = acked if acked is not None else sent
        if not (lo <= t <= hi):
            continue
        xp = x(t)
        if acked is None:
            color, top, h = "#c0392b", y + 14, 8
        elif member == report.new_primary and member != report.initial_primary:
            color, top, h = "#27ae60", y + 4, 18
        else:
            color, top, h = "#1f5fa8", y + 4, 18
        if acked is not None and waited and (replicas or 0) >= 1:
            top, h = y + 1, 21
        out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-width="1"/>'
                   % (xp, top, xp, top + h, color))
    y += LANE + 30

    # -- frozen / cut periods (stop..cont, partition..heal) over the member's lane
    for member, verb, start, end in fault_periods(report):
        if member not in lane_y or end < lo or start > hi:
            continue
        x1, x2 = x(start), x(min(end, hi))
        ly = lane_y[member]
        out.append('<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="#c0392b" '
                   'fill-opacity="0.18" stroke="#c0392b" stroke-dasharray="3,2">'
                   '<title>%s %s from %s</title></rect>'
                   % (x1, ly + 1, max(1.0, x2 - x1), LANE - 4, escape(member),
                      "partitioned" if verb == "partition" else "stopped", wall_ms(start)))
        text(x1 + 4, ly + LANE - 4, "partitioned" if verb == "partition" else "stopped (SIGSTOP)",
             9, color="#c0392b")

    # -- milestone lines and labels, over the lanes
    for label, t, detail, xp, row in placed:
        color = MILESTONE_COLORS.get(label, "#333")
        out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" '
                   'stroke-dasharray="4,3" stroke-width="1.5"><title>%s</title></line>'
                   % (xp, label_top + 16 * row + 4, xp, lanes_top + lanes_h, color,
                      escape("%s %s %s" % (label, wall_ms(t), detail))))
        text(xp + 3, label_top + 16 * row + 12, "%s %+.3fs" % (label, t - t0), 11,
             color=color, weight="bold")

    # -- legend and numbers, below the axis labels
    y = lanes_top + lanes_h + 30
    legend = [("master", ROLE_COLORS["master"]), ("replica", ROLE_COLORS["slave"]),
              ("down / unreachable", ROLE_COLORS["down"]),
              ("write ok (old primary)", "#1f5fa8"), ("write ok (new primary)", "#27ae60"),
              ("write failed", "#c0392b")]
    lx = 12
    for label, color in legend:
        out.append('<rect x="%d" y="%d" width="12" height="12" fill="%s"/>' % (lx, y, color))
        text(lx + 16, y + 10, label, 11)
        lx += 30 + 7 * len(label)
    y += 28
    for line in report.text().splitlines():
        text(12, y, line, 11, color="#333", extra=' xml:space="preserve" font-family="monospace"')
        y += 14
    height = y + 10
    head = ('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
            'viewBox="0 0 %d %d" font-family="Helvetica, Arial, sans-serif">'
            '<rect width="100%%" height="100%%" fill="#fff"/>' % (WIDTH, height, WIDTH, height))
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + head + "\n".join(out) + "</svg>\n"
