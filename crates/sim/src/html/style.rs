//! The page's style (inline: the report is one file).

pub(super) const CSS: &str = r#"
:root { --ink:#1d2733; --muted:#66717f; --line:#d9dee5; --bg:#f6f7f9; --card:#fff;
  --ok:#2f9e5b; --limit:#e6a700; --bad:#d64545; --err:#8e44ad; --pending:#a3adb8; --blue:#2f6fd6; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink); font:14px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1380px; margin: 0 auto; padding: 24px 28px 48px; }
header h1 { font-size: 26px; margin: 0 0 4px; letter-spacing: -0.01em; }
header h1 small { font-weight: 400; color: var(--muted); font-size: 15px; margin-left: 8px; }
header p { margin: 4px 0; max-width: 980px; }
.meta { color: var(--muted); font-size: 13px; }
h2 { font-size: 17px; margin: 28px 0 10px; }
h2 small { font-weight: 400; color: var(--muted); font-size: 13px; margin-left: 6px; }
.cards { display:flex; flex-wrap:wrap; gap:12px; margin-top:18px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:12px 14px; min-width:112px; }
.card .v { font-size:26px; font-weight:650; line-height:1.1; }
.card .k { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
.card.wide { min-width: 250px; }
.card .small { color:var(--muted); font-size:11.5px; margin-top:2px; }
.bar { display:flex; height:10px; border-radius:5px; overflow:hidden; margin-top:8px; background:#eef0f3; }
.bar span { display:block; height:100%; }
.panel { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:10px 12px; }
.grid { display:grid; grid-template-columns: 1fr 1fr; gap:14px; }
svg { display:block; width:100%; height:auto; }
svg text { font-family: inherit; }
.legend { display:flex; flex-wrap:wrap; gap:14px; color:var(--muted); font-size:12px; margin:8px 4px 2px; }
.legend i { display:inline-block; width:12px; height:12px; border-radius:3px; vertical-align:-2px; margin-right:5px; }
table { border-collapse: collapse; width:100%; background:var(--card); border:1px solid var(--line); border-radius:10px; overflow:hidden; }
th, td { text-align:left; padding:5px 10px; border-bottom:1px solid #eef0f3; vertical-align: top; }
th { background:#f0f2f5; font-size:12px; text-transform:uppercase; letter-spacing:.04em; color:var(--muted); }
td.t { font-variant-numeric: tabular-nums; color: var(--muted); white-space:nowrap; }
td.o { white-space:nowrap; }
tr.detail td { color:#97a0ab; }
.badge { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; font-weight:600; color:#fff; white-space:nowrap; }
.note { color: var(--muted); font-size: 13px; }

.ok { color: var(--ok); } .bad { color: var(--bad); } .limit { color: #b98500; }
td.num { font-variant-numeric: tabular-nums; white-space:nowrap; }
td.m { max-width: 760px; }
tr:target td, tr.flash td { background:#fff3c4; }
details.more > summary { cursor:pointer; list-style:none; }
details.more > summary::-webkit-details-marker { display:none; }
details.more > summary::after { content:" more"; color:var(--blue); font-size:12px; white-space:nowrap; }
details.more[open] > summary::after { content:"less"; }
details.more[open] > summary .short { display:none; }
details.more .full { white-space:normal; }
.filters { display:flex; flex-wrap:wrap; align-items:center; gap:6px; margin:0 0 8px; }
.chip { font:inherit; font-size:12px; border:1px solid var(--line); background:var(--card); border-radius:12px; padding:2px 9px; cursor:pointer; color:var(--ink); }
.chip i { display:inline-block; width:9px; height:9px; border-radius:50%; margin-right:5px; }
.chip b { font-weight:600; color:var(--muted); margin-left:2px; }
.chip[aria-pressed="false"] { opacity:.45; text-decoration:line-through; }
.filters input { font:inherit; font-size:12px; padding:3px 8px; border:1px solid var(--line); border-radius:6px; margin-left:8px; min-width:200px; }
.legend svg.ico { display:inline-block; width:12px; height:12px; vertical-align:-2px; margin-right:4px; }
.legend i.line { width:18px; height:0; border-radius:0; vertical-align:3px; }
.moments { display:flex; flex-wrap:wrap; align-items:center; gap:8px; margin:8px 4px 2px; }
.moments input[type=range] { flex:1; min-width:300px; }
.moments button { font:inherit; border:1px solid var(--line); background:var(--card); border-radius:6px; padding:1px 8px; cursor:pointer; }
.moment-count { color:var(--muted); font-size:12px; }
.moment { flex-basis:100%; font-size:13px; }
.moment a { margin-left:6px; font-size:12px; }
#site-map .node rect { fill:#e9edf2; stroke:#cfd6de; }
#site-map .node text { fill:#66717f; }
#site-map .node[data-state="pods"] rect { fill:#2f6fd6; stroke:#2f6fd6; }
#site-map .node[data-state="pods"] text { fill:#fff; }
#site-map .node[data-state="failed"] rect { fill:#fde2e2; stroke:#b03030; stroke-width:1.5; stroke-dasharray:3 2; }
#site-map .node[data-state="failed"] text { fill:#b03030; }
#site-map .node[data-state="notready"] rect { fill:#d64545; stroke:#b03030; }
#site-map .node[data-state="notready"] text { fill:#fff; }
#site-map .site-count { fill:#66717f; }
#site-map .site-count[data-state="pods"] { fill:#2f6fd6; }
#site-map .site-count[data-state="down"] { fill:#d64545; font-weight:700; }
#chart-events a.mark { cursor:pointer; }
#chart-events a.mark:hover path, #chart-events a.mark:hover circle, #chart-events a.mark:hover rect { stroke:#1d2733; stroke-width:1.5; }
"#;
