#!/usr/bin/env python3
"""Checks the simulator's HTML reports in headless Chromium, as a person would look at them.

    html_report_check.py CHROMIUM OUT-DIR NAME=REPORT.html[:REPORT.json] ...

(scripts/html-report-check.sh runs the examples and calls it.)

Drives Chromium through the DevTools protocol over --remote-debugging-pipe (standard
library only), runs the page's script, and checks what is drawn, not the HTML text:

- every mark of the failures chart sits in its lane (its centre within the band of the
  lane's label), marks never cover each other, a mark for several happenings shows their
  number, and the pixel at a mark's centre has the mark's colour (nothing hides it);
- site names fit their boxes, and no two link labels on the map cover each other, at
  every moment of the map's slider;
- the slider changes the map: the scenario's incident shows on it (a failed or NotReady
  node in red, a degraded link's latency, an activated path that appears), sampled as
  pixel colours in the regions of the nodes; the end the script draws is the end the
  page was written with;
- clicking a mark shows its timeline row even when a filter hid it; filters hide rows;
  long rows fold, and unfold, with the whole text on hover;
- the table by offer says what the JSON report says.

Colours are compared with a tolerance and regions are found from the page's own layout,
so fonts and anti-aliasing do not matter. Screenshots are left in OUT-DIR: NAME.png (the
page), NAME-map.png and NAME-map-<moment>.png (the map at the end and at its incidents),
NAME-events.png and NAME-links.png (the failures and the latency charts).
Exits 1 with the list of failures.
"""

import base64
import fcntl
import json
import os
import select
import struct
import subprocess
import sys
import tempfile
import zlib

# The lanes of the failures chart, as crates/sim/src/html/marks.rs assigns them.
LANE_OF = {
    "NodeFailed": "nodes", "NodeNotReady": "nodes", "NodeRecovered": "nodes",
    "ClusterFailed": "nodes", "ClusterRecovered": "nodes",
    "LinkChanged": "links",
    "Mitigated": "mitigations", "MitigationFailed": "mitigations",
    "Evicted": "evictions", "TaintEviction": "evictions", "Migrated": "evictions",
    "PodFailed": "pod-failures",
    "Unplaceable": "unplaceable",
    "Applied": "scenario", "Deleted": "scenario", "Scaled": "scenario", "Note": "scenario",
    "ActionFailed": "scenario",
}

# What each example's report must show (see docs/simulator.md, "Example scenarios").
EXPECT = {
    "stadium-ar": {
        "marks": [("mitigations", "Mitigated", 4), ("evictions", "TaintEviction", 3),
                  ("nodes", "NodeFailed", 1), ("nodes", "NodeNotReady", 1),
                  ("nodes", "NodeRecovered", 1), ("links", "LinkChanged", 1)],
        # The moment whose text holds `at`: node -> state, link -> label, paths drawn or not.
        "moments": [
            {"at": "the fibre between edge-1 and metro-1 degrades", "nodes": {"edge-1-a": "pods"},
             "links": {"edge-1 - metro-1": "12ms"}, "down": ["default/backup-1"]},
            {"at": "Mitigated ×4", "links": {"edge-1 - metro-1": "12ms"}, "up": ["default/backup-1"]},
            {"at": "power failure", "nodes": {"edge-1-a": "failed", "metro-1-a": "pods"}},
            {"at": "NodeNotReady", "nodes": {"edge-1-a": "notready"}},
            {"at": "the fibre is repaired", "links": {"edge-1 - metro-1": "2ms"}, "nodes": {"edge-1-a": "pods"}},
        ],
        "offers": {"ar/ar-video": 180.0, "ar/ar-game-state": 120.0, "ar/ar-stadium": 120.0},
        # A binding of this offer (its name hashes generated pod names).
        "latency": "ar/ar-game-state-",
    },
    "eviction": {
        "marks": [("mitigations", "Mitigated", 1), ("mitigations", "MitigationFailed", 1),
                  ("evictions", "Evicted", 1), ("links", "LinkChanged", 2)],
        "moments": [
            {"at": "roadworks", "links": {"campus - edge-a": "8ms", "campus - edge-c": "8ms"},
             "nodes": {"edge-a-1": "pods", "edge-c-1": "pods"}, "down": ["default/backup-a"]},
            {"at": "MitigationFailed", "up": ["default/backup-a"]},
            {"at": "Evicted", "nodes": {"edge-c-1": "empty", "edge-b-1": "empty"}},
            {"at": "00:13:02", "nodes": {"edge-b-1": "pods", "edge-c-1": "empty"}},
        ],
        "offers": {},
        "latency": "vision/analytics-campus-",
    },
    "node-failure": {
        "marks": [("nodes", "NodeFailed", 1), ("nodes", "NodeNotReady", 1),
                  ("nodes", "NodeRecovered", 1), ("evictions", "TaintEviction", 3)],
        "moments": [
            {"at": "edge-1-b, the node next to the mall", "nodes": {"edge-1-b": "failed", "edge-1-a": "pods"}},
            {"at": "NodeNotReady", "nodes": {"edge-1-b": "notready"}},
            {"at": "NodeRecovered", "nodes": {"edge-1-b": "empty", "edge-1-a": "pods"}},
        ],
        "offers": {"shop/frontend-cart": 0.0},
        "latency": None,
    },
    "broadcast": {
        "marks": [("mitigations", "MitigationFailed", 2), ("evictions", "Evicted", 1),
                  ("links", "LinkChanged", 1)],
        "moments": [],
        "offers": {"tv/encoder-feeds": 240.2},
        "latency": None,
        # The link utilisation chart draws this link direction.
        "bandwidth": "edge-a - stadium",
    },
    # Many clusters: each member is a node at its site on the map.
    "multicluster-outage": {
        "marks": [("nodes", "ClusterFailed", 1), ("nodes", "ClusterRecovered", 1)],
        "moments": [
            {"at": "the link between the hub and edge-east is cut", "nodes": {"edge-east": "failed", "edge-west": "empty"}},
            {"at": "cluster edge-east NotReady", "nodes": {"edge-east": "notready"}},
            {"at": "ar/ar-game moved to edge-west", "nodes": {"edge-west": "empty"}},
            {"at": "the end of the run", "nodes": {"edge-west": "pods", "edge-east": "empty"}},
        ],
        "offers": {},
        "latency": None,
    },
    "multicluster-degraded-link": {
        "marks": [("links", "LinkChanged", 1)],
        "moments": [
            {"at": "congestion on the link between the stadium and edge-east", "nodes": {"edge-east": "pods", "edge-west": "empty"}},
            {"at": "ar/ar-game moved to edge-west", "nodes": {"edge-east": "pods"}},
            {"at": "the end of the run", "nodes": {"edge-west": "pods", "edge-east": "empty"}},
        ],
        "offers": {},
        "latency": None,
    },
    # Service chains: each lane drawn through its hops' nodes at each moment.
    "5g-upf": {
        "marks": [("links", "LinkChanged", 1), ("mitigations", "MitigationFailed", 1),
                  ("evictions", "Migrated", 2), ("evictions", "TaintEviction", 2),
                  ("nodes", "NodeFailed", 1), ("nodes", "NodeNotReady", 1), ("nodes", "NodeRecovered", 1)],
        "moments": [
            {"at": "the fibre between the RAN and edge-d degrades",
             "lanes": {"upf/up#0": ("a1 a1 b1", "Compliant"), "upf/up#1": ("d1 d1 b1", "Violation")}},
            # The migration starts: the VMI still runs on d1 until its target pod runs.
            {"at": "Migrated", "lanes": {"upf/up#1": ("d1 d1 b1", "Violation")}},
            {"at": "power failure", "nodes": {"a1": "failed"},
             "lanes": {"upf/up#0": ("a1 a1 b1", "Compliant"), "upf/up#1": ("c1 d1 b1", "Compliant")}},
            {"at": "the end of the run",
             "lanes": {"upf/up#0": ("c1 d1 b1", "Compliant"), "upf/up#1": ("c1 d1 b1", "Compliant")}},
        ],
        "offers": {},
        "latency": "upf/up-lane-1",
    },
    "burst": {
        "marks": [("scenario", "Applied", None)],
        "moments": [],
        "offers": {"festival/cameras-festival": 0.0},
        "latency": None,
    },
}

# Node states as the page's style colours them (the fill of the node's box).
NODE_FILL = {"pods": "#2f6fd6", "empty": "#e9edf2", "failed": "#fde2e2", "notready": "#d64545"}


class Failed(Exception):
    pass


def some(items, shown=4):
    """A list for a message: its first items and how many more."""
    items = list(items)
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return ", ".join(str(i) for i in items[:shown]) + more


def png_pixels(data):
    """(width, height, rows of RGB tuples) of an 8-bit RGB or RGBA PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise Failed("not a PNG")
    pos, idat = 8, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, ctype = struct.unpack(">IIBB", body[:10])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    if depth != 8 or ctype not in (2, 6):
        raise Failed(f"unexpected PNG format (depth {depth}, colour type {ctype})")
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev, i = [], bytearray(stride), 0
    for _ in range(height):
        f = raw[i]
        line = bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append([tuple(line[x * bpp:x * bpp + 3]) for x in range(width)])
        prev = line
    return width, height, rows


def rgb(hex_colour):
    h = hex_colour.lstrip("#")
    return tuple(int(h[k:k + 2], 16) for k in (0, 2, 4))


def near(pixel, hex_colour, tolerance=48):
    return sum(abs(p - q) for p, q in zip(pixel, rgb(hex_colour))) <= tolerance


class Browser:
    """Chromium with the DevTools protocol on file descriptors 3 (in) and 4 (out)."""

    def __init__(self, path):
        self.profile = tempfile.mkdtemp(prefix="html-report-check-")
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()
        # Out of the way of 3 and 4 before the child puts them there (inheritable: F_DUPFD
        # clears close-on-exec; the parent's ends keep it).
        high_r = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 100)
        high_w = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 100)

        def place():
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        self.proc = subprocess.Popen(
            [path, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
             "--force-device-scale-factor=1", "--remote-debugging-pipe",
             f"--user-data-dir={self.profile}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=place, close_fds=False)
        for fd in (to_chrome_r, from_chrome_w, high_r, high_w):
            os.close(fd)
        self.next_id = 0
        self.buffer = b""
        self.events = []

    def _read(self, timeout):
        while b"\0" not in self.buffer:
            ready, _, _ = select.select([self.from_chrome], [], [], timeout)
            if not ready:
                raise Failed("Chromium did not answer in time")
            chunk = os.read(self.from_chrome, 1 << 20)
            if not chunk:
                raise Failed("Chromium went away")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method, params=None, session=None, timeout=60):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.to_chrome, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read(timeout)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise Failed(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method, session, timeout=60):
        while True:
            for k, e in enumerate(self.events):
                if e.get("method") == method and e.get("sessionId") == session:
                    return self.events.pop(k)
            self.events.append(self._read(timeout))

    def close(self):
        try:
            self.send("Browser.close", timeout=10)
        except Failed:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        subprocess.run(["rm", "-rf", self.profile], check=False)


class Page:
    def __init__(self, browser, url, width=1400):
        self.b = browser
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.s = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page.enable", "Runtime.enable"):
            browser.send(domain, session=self.s)
        self.width = width
        self.resize(1000)
        browser.send("Page.navigate", {"url": url}, session=self.s)
        browser.wait_event("Page.loadEventFired", self.s)
        # A viewport as tall as the page: client rectangles are page coordinates.
        self.resize(min(int(self.js("document.documentElement.scrollHeight")), 16000))

    def resize(self, height):
        self.b.send("Emulation.setDeviceMetricsOverride",
                    {"width": self.width, "height": height, "deviceScaleFactor": 1, "mobile": False},
                    session=self.s)

    def errors(self):
        return [e["params"]["exceptionDetails"].get("exception", {}).get("description", "error")
                for e in self.b.events
                if e.get("method") == "Runtime.exceptionThrown" and e.get("sessionId") == self.s]

    def js(self, expression):
        result = self.b.send("Runtime.evaluate",
                             {"expression": expression, "returnByValue": True, "awaitPromise": True},
                             session=self.s)
        if "exceptionDetails" in result:
            raise Failed(f"script failed: {result['exceptionDetails'].get('exception', {}).get('description')}")
        return result["result"].get("value")

    def click(self, x, y):
        for kind in ("mousePressed", "mouseReleased"):
            self.b.send("Input.dispatchMouseEvent",
                        {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1},
                        session=self.s)

    def shot(self, clip=None):
        params = {"format": "png", "captureBeyondViewport": False}
        if clip:
            params["clip"] = {**clip, "scale": 1}
        return base64.b64decode(self.b.send("Page.captureScreenshot", params, session=self.s)["data"])

    def pixel(self, x, y):
        _, _, rows = png_pixels(self.shot({"x": int(x), "y": int(y), "width": 1, "height": 1}))
        return rows[0][0]


# Helpers in the page: boxes in page coordinates.
HELPERS = r"""
window.__box = (e) => { const r = e.getBoundingClientRect();
  return {x: r.x, y: r.y, w: r.width, h: r.height, cx: r.x + r.width / 2, cy: r.y + r.height / 2}; };
// A label's box with its white halo (stroke 3: 1.5 px each side).
window.__halo = (b) => ({x: b.x - 1.5, y: b.y - 1.5, w: b.w + 3, h: b.h + 3});
window.__overlap = (a, b) => Math.max(0, Math.min(a.x + a.w, b.x + b.w) - Math.max(a.x, b.x)) *
  Math.max(0, Math.min(a.y + a.h, b.y + b.h) - Math.max(a.y, b.y));
window.__moment = (i) => { const s = document.getElementById('map-slider'); s.value = String(i);
  s.dispatchEvent(new Event('input')); return document.getElementById('map-moment').textContent; };
window.__mapState = () => [...document.querySelectorAll('#site-map g.node')].map(g =>
  [g.dataset.node, g.dataset.state, g.querySelector('text').textContent]).concat(
  [...document.querySelectorAll('#site-map text.site-count')].map(t =>
  [t.dataset.nodes, t.dataset.state, t.lastChild.textContent]));
true
"""


def check_marks(page, name, expect, fail):
    marks = page.js("""[...document.querySelectorAll('#chart-events a.mark')].map(a => {
        const shape = a.querySelector('circle, path, rect');
        const count = a.querySelector('text.count');
        return {lane: a.dataset.lane, kind: a.dataset.kind, n: Number(a.dataset.count),
                href: a.getAttribute('href'), box: __box(shape), fill: shape.getAttribute('fill'),
                count: count ? count.textContent : null};
    })""")
    lanes = page.js("""Object.fromEntries([...document.querySelectorAll('#chart-events svg > text')]
        .filter(t => t.getAttribute('text-anchor') === 'end').map(t => [t.textContent.replace(' ', '-'), __box(t).cy]))""")
    if len(lanes) != 7:
        fail(f"{name}: the failures chart has lanes {sorted(lanes)}")
        return
    ys = sorted(lanes.values())
    half = (ys[1] - ys[0]) / 2
    for m in marks:
        if LANE_OF.get(m["kind"]) != m["lane"]:
            fail(f"{name}: {m['kind']} drawn in lane {m['lane']}")
        if abs(m["box"]["cy"] - lanes.get(m["lane"], -1e9)) > half:
            fail(f"{name}: a {m['kind']} mark is not within its lane {m['lane']}")
        if m["n"] > 1 and m["count"] != str(m["n"]):
            fail(f"{name}: a mark of {m['n']} {m['kind']} shows the count {m['count']!r}")
        if not m["href"]:
            fail(f"{name}: a {m['kind']} mark links nowhere")
    for i, a in enumerate(marks):
        for b in marks[i + 1:]:
            if a["lane"] == b["lane"]:
                covered = page.js(f"__overlap({json.dumps(a['box'])}, {json.dumps(b['box'])})")
                if covered > 1:
                    fail(f"{name}: {a['kind']} and {b['kind']} marks cover each other")
    for lane, kind, count in expect["marks"]:
        found = [m for m in marks if m["lane"] == lane and m["kind"] == kind]
        if not found:
            fail(f"{name}: no {kind} mark in the {lane} lane")
        elif count is not None and not any(m["n"] == count for m in found):
            fail(f"{name}: no mark of {count} {kind} (marks of {[m['n'] for m in found]})")
        elif count is None and not any(m["n"] > 1 for m in found):
            fail(f"{name}: the {kind} marks show no counts")
    # Nothing covers a mark: the pixel at its centre has its colour.
    seen = set()
    for m in marks:
        if m["kind"] in seen:
            continue
        seen.add(m["kind"])
        pixel = page.pixel(m["box"]["cx"], m["box"]["cy"] + (1 if m["kind"] in ("NodeFailed", "NodeNotReady", "MitigationFailed", "PodFailed", "Unplaceable", "ActionFailed") else 0))
        if not near(pixel, m["fill"]):
            fail(f"{name}: the {m['kind']} mark's centre is {pixel}, not its colour {m['fill']}")
    return marks


def check_map(page, name, expect, out, fail):
    count = page.js("document.querySelectorAll('#map-data').length ? JSON.parse(document.getElementById('map-data').textContent).moments.length : 0")
    at_end = page.js("__mapState()")
    whats = [page.js(f"__moment({i})") for i in range(count)]

    def drawn_apart(when):
        # Site names inside their boxes, link labels apart.
        bad = page.js("""[...document.querySelectorAll('#site-map g.site')].filter(g => {
            const r = __box(g.querySelector('rect')), t = __box(g.querySelector('text'));
            return t.x < r.x - 0.5 || t.x + t.w > r.x + r.w + 0.5; }).map(g => g.dataset.site)""")
        if bad:
            fail(f"{name}: site names overflow their boxes {when}: {some(bad)}")
        covered = page.js("""(() => { const ls = [...document.querySelectorAll('#site-map g.link')]
            .filter(g => g.style.display !== 'none' && g.querySelector('text'))
            .map(g => [g.dataset.link || g.dataset.path || g.querySelector('title').textContent.split(':')[0],
                       __halo(__box(g.querySelector('text')))]);
            const out = []; for (let i = 0; i < ls.length; i++) for (let j = i + 1; j < ls.length; j++)
              if (__overlap(ls[i][1], ls[j][1]) > 2) out.push(ls[i][0] + ' / ' + ls[j][0]);
            return out; })()""")
        if covered:
            fail(f"{name}: link labels cover each other {when}: {some(covered)}")

    if count:
        for i in range(count):
            page.js(f"__moment({i})")
            drawn_apart(f"at moment {whats[i][:40]!r}")
    else:
        drawn_apart("on the map")
    for want in expect["moments"]:
        start = want["at"]
        index = next((i for i, w in enumerate(whats) if start in w), None)
        if index is None:
            fail(f"{name}: no moment of the map says {start!r} (moments: {some(w[:30] for w in whats)})")
            continue
        page.js(f"__moment({index})")
        for node, state in want.get("nodes", {}).items():
            got = page.js(f"""(() => {{ const g = document.querySelector('#site-map g.node[data-node="{node}"]');
                return g ? [g.dataset.state, __box(g.querySelector('rect'))] : null; }})()""")
            if not got:
                fail(f"{name}: no node {node} on the map")
                continue
            if got[0] != state:
                fail(f"{name}: at {start!r} node {node} is {got[0]}, not {state}")
            # The region of the node shows the state's colour (a point inside its box, off
            # the number in it).
            box = got[1]
            pixel = page.pixel(box["x"] + 3, box["y"] + box["h"] / 2)
            if not near(pixel, NODE_FILL[state]):
                fail(f"{name}: at {start!r} node {node} is drawn {pixel}, not {NODE_FILL[state]} ({state})")
        for lane, (nodes, compliance) in want.get("lanes", {}).items():
            got = page.js(f"""(() => {{ const g = document.querySelector('#site-map g.lane[data-lane="{lane}"]');
                return g && g.style.display !== 'none' ? [g.dataset.nodes, g.dataset.compliance,
                  g.querySelector('path').getAttribute('d')] : null; }})()""")
            if not got:
                fail(f"{name}: at {start!r} lane {lane} is not drawn")
                continue
            if got[0] != nodes or (compliance and got[1] != compliance):
                fail(f"{name}: at {start!r} lane {lane} runs through {got[0]!r} ({got[1]}), not {nodes!r} ({compliance})")
            if len(got[2].split(" L")) != len(nodes.split()) + 2:
                fail(f"{name}: at {start!r} lane {lane} is drawn {got[2]!r}, not ingress > {nodes} > egress")
        for link, text in want.get("links", {}).items():
            got = page.js(f"""(() => {{ const t = document.querySelector('#site-map g.link[data-link="{link}"] text.lat');
                return t ? t.textContent : null; }})()""")
            if got != text:
                fail(f"{name}: at {start!r} link {link} reads {got!r}, not {text!r}")
        up = page.js("""[...document.querySelectorAll('#site-map g.link[data-path]')]
            .filter(g => g.style.display !== 'none').map(g => g.dataset.path.split('|')[0])""")
        for p in want.get("up", []):
            if p not in up:
                fail(f"{name}: at {start!r} the activated path {p} is not drawn (drawn: {up})")
        for p in want.get("down", []):
            if p in up:
                fail(f"{name}: at {start!r} the activated path {p} is drawn before it was activated")
        box = page.js("__box(document.getElementById('map'))")
        slug = "".join(c if c.isalnum() else "-" for c in whats[index][:8])
        with open(os.path.join(out, f"{name}-map-{slug}.png"), "wb") as f:
            f.write(page.shot({"x": box["x"], "y": box["y"], "width": box["w"], "height": box["h"]}))
    if count:
        page.js(f"__moment({count - 1})")
        if page.js("__mapState()") != at_end:
            fail(f"{name}: the script draws the end differently from the page")
        if expect["moments"] and page.js(f"__moment(0); JSON.stringify(__mapState())") == json.dumps(at_end, separators=(",", ":")):
            fail(f"{name}: the map at the first moment is the map at the end")
        page.js(f"__moment({count - 1})")
    elif expect["moments"]:
        fail(f"{name}: the map has no moments")


def check_timeline(page, name, marks, fail):
    # A filter hides its rows; a mark's link shows its row anyway.
    mark = next((m for m in marks if m["href"]), None)
    if mark is None:
        return
    kind = page.js(f"document.getElementById('{mark['href'][1:]}').dataset.kind")
    page.js(f"document.querySelector('#timeline-filters button[data-kind=\"{kind}\"]').click()")
    hidden = page.js(f"[...document.querySelectorAll('#timeline-table tbody tr[data-kind=\"{kind}\"]')].every(tr => tr.hidden)")
    if not hidden:
        fail(f"{name}: the {kind} filter does not hide its rows")
    # A real click on the mark; the page's hashchange handler runs before the one added
    # here, which reads the row.
    page.js(f"""window.__clicked = new Promise(done => window.addEventListener('hashchange', () => {{
        const tr = document.getElementById('{mark['href'][1:]}');
        done([tr.hidden, tr.classList.contains('flash'), location.hash]); }}, {{once: true}})); true""")
    page.click(mark["box"]["cx"], mark["box"]["cy"])
    shown = page.js("window.__clicked")
    if shown[0] or not shown[1]:
        fail(f"{name}: clicking a {mark['kind']} mark does not show its row {mark['href']} ({shown})")
    summary = page.js("""(() => { const d = document.querySelector('#timeline-table details.more');
        return d && __box(d.querySelector('summary')); })()""")
    if summary is None:
        return None
    # The pointer over the row gives its tooltip; opening it shows the whole text.
    page.b.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": summary["cx"], "y": summary["cy"]},
                session=page.s)
    folded = page.js("""(() => { const d = document.querySelector('#timeline-table details.more');
        const short = d.querySelector('summary').textContent;
        d.open = true; const open = __box(d.querySelector('.full')).h > 0; d.open = false;
        return [short.length, d.title.length, open]; })()""")
    if not (folded[0] < 200 and folded[1] > folded[0] and folded[2]):
        fail(f"{name}: a folded row does not hold its whole text ({folded})")
    return folded


def check_offers(page, name, report, expect, fail):
    rows = page.js("""Object.fromEntries([...document.querySelectorAll('#slo-table tbody tr')].map(tr =>
        [tr.dataset.offer, Number(tr.querySelectorAll('td[data-seconds]')[0].dataset.seconds)]))""")
    for o in (report or {}).get("offers", []):
        if rows.get(o["offer"]) != o["violationSeconds"]:
            fail(f"{name}: the table says {rows.get(o['offer'])} s in Violation for {o['offer']}, the JSON report {o['violationSeconds']}")
    for offer, seconds in expect["offers"].items():
        if rows.get(offer) != seconds:
            fail(f"{name}: {offer} spent {rows.get(offer)} s in Violation, expected {seconds}")


def check(page, name, report, out, fail):
    page.js(HELPERS)
    # The examples' expectations go by the scenario's name; any other report gets the checks
    # that hold for every report.
    scenario = (report or {}).get("scenario", name)
    expect = EXPECT.get(scenario, {"marks": [], "moments": [], "offers": {}, "latency": None})
    with open(os.path.join(out, f"{name}.png"), "wb") as f:
        f.write(page.shot())
    for part in ("chart-events", "chart-links", "chart-bandwidth", "map"):
        box = page.js(f"(() => {{ const e = document.getElementById('{part}'); return e && __box(e); }})()")
        if box:
            with open(os.path.join(out, f"{name}-{part.removeprefix('chart-')}.png"), "wb") as f:
                f.write(page.shot({"x": box["x"], "y": box["y"], "width": box["w"], "height": box["h"]}))

    def script_ran():
        errors = page.errors()
        if errors:
            fail(f"{name}: the page's script failed: {errors}")
        if page.js("(() => { const f = document.getElementById('timeline-filters'); return !f || f.hidden; })()"):
            fail(f"{name}: the page's script did not run (no timeline filters shown)")

    def bandwidth():
        link = expect.get("bandwidth")
        drawn = page.js("document.querySelectorAll('#chart-bandwidth path.link-use').length")
        if link:
            if not page.js(f"document.querySelectorAll('#chart-bandwidth path.link-use[data-link=\"{link}\"]').length"):
                fail(f"{name}: the link utilisation chart draws no line for {link}")
        elif drawn and not (report or {}).get("series", {}).get("linkBandwidth"):
            fail(f"{name}: a link utilisation chart without reservations in the report")

    def latency():
        if expect["latency"]:
            drawn = page.js(f"document.querySelectorAll('#chart-links path.binding-latency[data-bindings*=\"{expect['latency']}\"]').length")
            if not drawn:
                fail(f"{name}: the latency chart draws no binding {expect['latency']}...")

    marks = []
    steps = [
        ("script", script_ran),
        ("marks", lambda: marks.extend(check_marks(page, name, expect, fail) or [])),
        ("map", lambda: check_map(page, name, expect, out, fail)),
        ("offers", lambda: check_offers(page, name, report, expect, fail)),
        ("latency", latency),
        ("bandwidth", bandwidth),
        ("timeline", lambda: check_timeline(page, name, marks, fail)),
    ]
    # Each step on its own: a report without one part still gets the others checked.
    for step, run in steps:
        try:
            run()
        except Failed as e:
            fail(f"{name}: {step}: {e}")


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    browser_path, out = sys.argv[1], sys.argv[2]
    failures = []
    browser = Browser(browser_path)
    try:
        for arg in sys.argv[3:]:
            name, files = arg.split("=", 1)
            html, _, report_path = files.partition(":")
            report = json.load(open(report_path)) if report_path else None
            page = Page(browser, "file://" + os.path.abspath(html))
            before = len(failures)
            try:
                check(page, name, report, out, failures.append)
            except Failed as e:
                failures.append(f"{name}: {e}")
            status = "OK" if len(failures) == before else "FAILED"
            print(f"html-report-check: {name}: {status} ({out}/{name}.png)")
    finally:
        browser.close()
    if failures:
        print("html-report-check: FAILED:\n  " + "\n  ".join(failures), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
