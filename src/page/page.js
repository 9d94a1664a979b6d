// The job page: draws a polymr report (a job's, a map task's or a reduce task's) from the
// JSON embedded in this file, or, live, from the report the server hands out while the job
// runs. Every piece of the report reaches the page as text (textContent, setAttribute, SVG
// <title>): nothing from the report is ever parsed as HTML.
(function () {
  "use strict";

  var SVG = "http://www.w3.org/2000/svg";
  var FATES = ["processed", "partial", "failed", "skipped"];
  var MAX_ROWS = 5000;
  var MAX_FAILURES = 200;
  var POLL_MS = 500;

  var config = readJson("polymr-config") || {};
  var state = {
    report: readJson("polymr-report") || {},
    filter: filterFromHash(),
    sortKey: null,
    sortDir: 1,
    pollErrors: 0,
    gone: false
  };

  function readJson(id) {
    var node = document.getElementById(id);
    if (!node) return null;
    try {
      return JSON.parse(node.textContent);
    } catch (e) {
      return null;
    }
  }

  // An element with properties and children; strings become text nodes.
  function h(tag, props) {
    var node = document.createElement(tag);
    setProps(node, props);
    for (var i = 2; i < arguments.length; i++) append(node, arguments[i]);
    return node;
  }

  function svg(tag, props) {
    var node = document.createElementNS(SVG, tag);
    setProps(node, props);
    for (var i = 2; i < arguments.length; i++) append(node, arguments[i]);
    return node;
  }

  function setProps(node, props) {
    if (!props) return;
    Object.keys(props).forEach(function (k) {
      var v = props[k];
      if (v === undefined || v === null) return;
      if (k === "text") node.textContent = String(v);
      else if (k === "onclick") node.addEventListener("click", v);
      else node.setAttribute(k === "className" ? "class" : k, String(v));
    });
  }

  function append(node, child) {
    if (child === undefined || child === null || child === false) return;
    if (Array.isArray(child)) {
      child.forEach(function (c) { append(node, c); });
    } else if (typeof child === "object" && child.nodeType) {
      node.appendChild(child);
    } else {
      node.appendChild(document.createTextNode(String(child)));
    }
  }

  // ---- formatting -------------------------------------------------------------------------

  function num(n) {
    n = Number(n) || 0;
    return n.toLocaleString("en-US");
  }

  function bytes(n) {
    n = Number(n) || 0;
    var units = ["B", "KiB", "MiB", "GiB", "TiB"];
    var u = 0;
    while (n >= 1024 && u < units.length - 1) { n /= 1024; u++; }
    return u === 0 ? n + " B" : n.toFixed(1) + " " + units[u];
  }

  function ms(n) {
    n = Number(n) || 0;
    if (n < 1000) return Math.round(n) + " ms";
    var s = n / 1000;
    if (s < 60) return s.toFixed(s < 10 ? 2 : 1) + " s";
    var m = Math.floor(s / 60);
    if (m < 60) return m + " min " + Math.round(s - 60 * m) + " s";
    return Math.floor(m / 60) + " h " + (m % 60) + " min";
  }

  function clock(unixMs) {
    var d = new Date(Number(unixMs) || 0);
    return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  }

  function pad5(n) {
    var s = String(n);
    while (s.length < 5) s = "0" + s;
    return s;
  }

  // ---- reading the report -----------------------------------------------------------------

  function isJob(r) {
    return r.kind === "run" || Array.isArray(r.tasks);
  }

  // The task an attempt belongs to, from its Hadoop-style attempt id.
  function taskOf(a) {
    var m = /_([mr])_(\d+)_(\d+)$/.exec(a.attempt_id || "");
    if (!m) return { id: a.attempt_id || a.kind || "task", n: 0, kind: a.kind || "task" };
    var kind = m[1] === "m" ? "map" : "reduce";
    return { id: kind + "-" + pad5(parseInt(m[2], 10)), n: parseInt(m[3], 10), kind: kind };
  }

  function attemptsOf(r) {
    if (isJob(r)) return r.tasks || [];
    return r.attempt_id ? [r] : [];
  }

  // Tasks in plan order (maps, then reduces), each with its attempts in order.
  function tasksOf(r) {
    var byId = {};
    var order = [];
    function slot(id, kind) {
      if (!byId[id]) {
        byId[id] = { id: id, kind: kind, attempts: [], running: null };
        order.push(id);
      }
      return byId[id];
    }
    (r.planned_tasks || []).forEach(function (id) {
      slot(id, id.indexOf("reduce") === 0 ? "reduce" : "map");
    });
    attemptsOf(r).forEach(function (a) {
      var t = taskOf(a);
      slot(t.id, t.kind).attempts.push(a);
    });
    (r.running || []).forEach(function (x) {
      slot(x.id, x.id.indexOf("reduce") === 0 ? "reduce" : "map").running = x;
    });
    if (!r.planned_tasks) {
      order.sort(function (a, b) {
        var ka = byId[a].kind === "reduce" ? 1 : 0;
        var kb = byId[b].kind === "reduce" ? 1 : 0;
        return ka - kb || (a < b ? -1 : a > b ? 1 : 0);
      });
    }
    return order.map(function (id) { return byId[id]; });
  }

  // Every input's fate: processed, partial (read up to a failure, its first records used),
  // failed (nothing of it used) or skipped (never read).
  function fatesOf(r) {
    var rows = [];
    var index = {};
    function add(input, task, taskOk, attempts, last) {
      var fate = input.status === "processed" ? "processed"
        : input.status === "skipped" ? "skipped"
        : (taskOk && input.records > 0 ? "partial" : "failed");
      var reason = input.error || "";
      if (!taskOk && last && last.status !== "succeeded" && fate === "processed") {
        fate = "failed";
        reason = "its task failed: " + (last.error || last.status);
      }
      var row = {
        name: input.name, task: task, fate: fate, reason: reason,
        bytes_read: input.bytes_read || 0, bytes: input.bytes || 0,
        records: input.records || 0, invalid: input.invalid_records || 0,
        retries: input.retries || 0, attempts: attempts
      };
      index[task + "\n" + input.name] = row;
      rows.push(row);
    }
    if (!isJob(r)) {
      (r.inputs || []).forEach(function (i) {
        add(i, taskOf(r).id, r.status === "succeeded", 1, r);
      });
      return rows;
    }
    tasksOf(r).forEach(function (t) {
      if (t.kind !== "map" || t.attempts.length === 0) return;
      var last = t.attempts[t.attempts.length - 1];
      (last.inputs || []).forEach(function (i) {
        add(i, t.id, last.status === "succeeded", t.attempts.length, last);
      });
    });
    (r.lost_inputs || []).forEach(function (l) {
      var row = index[l.task + "\n" + l.name];
      var fate = l.status === "partial" ? "partial" : "failed";
      if (row) {
        if (fate === "partial" || row.fate !== "skipped") row.fate = fate;
        if (l.error) row.reason = l.error;
      } else {
        rows.push({
          name: l.name, task: l.task, fate: fate, reason: l.error || "",
          bytes_read: 0, bytes: 0, records: l.records || 0, invalid: 0, retries: 0, attempts: 0
        });
      }
    });
    return rows;
  }

  // Totals of a live report, which has none until the job ends: the last attempts so far.
  function totalsOf(r) {
    if (r.totals) return r.totals;
    var t = { files: 0, files_processed: 0, files_failed: 0, files_skipped: 0, bytes_read: 0,
      bytes: 0, records: 0, invalid_records: 0, output_records: 0, output_bytes: 0 };
    tasksOf(r).forEach(function (task) {
      var last = task.attempts[task.attempts.length - 1];
      if (!last || !last.totals) return;
      Object.keys(t).forEach(function (k) {
        if (task.kind === "reduce" && k.indexOf("output") !== 0) return;
        t[k] += Number(last.totals[k]) || 0;
      });
    });
    return t;
  }

  function statusOf(r) {
    return r.status || "unknown";
  }

  // ---- sections ---------------------------------------------------------------------------

  function stat(k, v, d) {
    return h("div", { className: "stat" },
      h("div", { className: "k", text: k }),
      h("div", { className: "v", text: v }),
      d ? h("div", { className: "d", text: d }) : null);
  }

  function glance(r) {
    var status = statusOf(r);
    var t = totalsOf(r);
    var job = isJob(r);
    var attempts = attemptsOf(r);
    var retried = 0;
    tasksOf(r).forEach(function (task) { if (task.attempts.length > 1) retried++; });
    var duration = job ? (r.timings && r.timings.total_ms) : r.duration_ms;
    if (r.live && r.timings) duration = (r.now_unix_ms || Date.now()) - r.timings.started_at_unix_ms;
    var output = r.output || r.output_dir || "";
    var title = job ? "polymr job " + (r.job_id || "") : "polymr " + (r.kind || "task") + " task " + (r.attempt_id || "");
    var sec = h("section", { id: "glance" },
      h("h1", null, title, h("span", { id: "status", className: "badge s-" + status, "data-status": status, text: status })),
      h("div", { className: "sub", text: (r.timings ? "started " + clock(r.timings.started_at_unix_ms) : r.started_at_unix_ms ? "started " + clock(r.started_at_unix_ms) : "") +
        (r.config ? " · config " + r.config : "") + (r.polymr_version ? " · polymr " + r.polymr_version : "") }),
      liveLine(r),
      h("div", { className: "glance" },
        stat(r.live ? "running for" : "duration", ms(duration)),
        job ? stat("tasks", num(r.map_tasks) + " map · " + num(r.reducers) + " reduce",
          num(attempts.length) + " attempts, " + num(retried) + " tasks retried" + (r.map_tasks_resumed ? ", " + num(r.map_tasks_resumed) + " resumed" : "")) : null,
        stat("inputs", num(t.files), num(t.files_processed) + " processed · " + num(t.files_failed) + " failed · " + num(t.files_skipped) + " skipped"),
        stat("records", num(t.records), num(t.invalid_records) + " invalid"),
        stat("read", bytes(t.bytes), bytes(t.bytes_read) + " from the sources"),
        stat("output", num(t.output_records) + " lines", bytes(t.output_bytes)),
        stat("result", output ? String(output) : "—", r.published ? "published" : "not published")));
    if (r.error) sec.appendChild(h("div", { className: "error", id: "job-error", text: r.error }));
    return sec;
  }

  function liveLine(r) {
    if (!config.live) return null;
    if (state.gone) {
      return h("div", { className: "live ended", id: "live", text: "The job ended and its server stopped; the final page is written beside the report." });
    }
    if (r.live) {
      return h("div", { className: "live", id: "live", text: "Live: updated " + clock(r.now_unix_ms || Date.now()) + ", every " + POLL_MS / 1000 + " s" });
    }
    return h("div", { className: "live ended", id: "live", text: "The job ended; the final page is written beside the report (" + (config.html || "report.html") + ")." });
  }

  // A Gantt chart: one row per task, one bar per attempt, coloured by outcome, over the
  // job's phases.
  function timeline(r) {
    var tasks = tasksOf(r);
    var now = r.now_unix_ms || Date.now();
    var bars = [];
    tasks.forEach(function (t, row) {
      t.attempts.forEach(function (a) {
        var start = Number(a.started_at_unix_ms) || 0;
        bars.push({ row: row, task: t, start: start, end: start + (Number(a.duration_ms) || 0),
          status: a.status, id: a.attempt_id, n: taskOf(a).n, error: a.error });
      });
      if (t.running) {
        bars.push({ row: row, task: t, start: Number(t.running.started_at_unix_ms) || now, end: now,
          status: "running", id: t.id + " attempt " + t.running.attempt, n: t.running.attempt });
      }
    });
    var timings = r.timings || {};
    var t0 = timings.started_at_unix_ms || Infinity;
    var t1 = -Infinity;
    bars.forEach(function (b) { t0 = Math.min(t0, b.start); t1 = Math.max(t1, b.end); });
    if (!isFinite(t0)) t0 = now;
    if (timings.total_ms) t1 = Math.max(t1, t0 + timings.total_ms);
    if (!isFinite(t1) || t1 <= t0) t1 = t0 + 1;
    var span = t1 - t0;

    var W = 1180, left = 150, right = 16, top = 30;
    var plot = W - left - right;
    var rowH = tasks.length > 300 ? 8 : tasks.length > 60 ? 12 : 20;
    var barH = rowH > 10 ? rowH - 6 : rowH - 2;
    var H = top + Math.max(1, tasks.length) * rowH + 8;
    function x(t) { return left + (t - t0) / span * plot; }

    var chart = svg("svg", { id: "timeline", width: W, height: H, viewBox: "0 0 " + W + " " + H, role: "img" },
      svg("title", { text: "Every task attempt on a timeline" }));
    // The phases: map tasks (partition, sort, spill), then the reduce tasks (merge and reduce).
    var ts = timings.started_at_unix_ms;
    if (ts && timings.map_ms) {
      band(chart, x(ts), x(ts + timings.map_ms), H, "phase-map", "map · sort · spill");
      if (timings.reduce_ms) {
        band(chart, x(ts + timings.map_ms), x(ts + timings.map_ms + timings.reduce_ms), H, "phase-reduce", "shuffle merge · reduce");
      }
    }
    ticks(span).forEach(function (d) {
      var tx = x(t0 + d);
      chart.appendChild(svg("line", { className: "axis", x1: tx, x2: tx, y1: top - 4, y2: H }));
      chart.appendChild(svg("text", { x: tx + 2, y: top - 8, text: ms(d) }));
    });
    var labelEvery = rowH >= 12 ? 1 : Math.ceil(12 / rowH);
    tasks.forEach(function (t, row) {
      if (row % labelEvery === 0) {
        chart.appendChild(svg("text", { x: 4, y: top + row * rowH + rowH / 2 + 4, className: "task-label", text: t.id }));
      }
    });
    bars.forEach(function (b) {
      var bx = x(b.start);
      var w = Math.max(2, x(b.end) - bx);
      chart.appendChild(svg("rect", {
        className: "bar " + b.status + (b.task.kind === "reduce" ? " reduce" : ""),
        x: bx, y: top + b.row * rowH + (rowH - barH) / 2, width: w, height: barH, rx: 2,
        "data-task": b.task.id, "data-attempt": b.id, "data-status": b.status
      }, svg("title", { text: b.task.id + " attempt " + b.n + ": " + b.status + ", " + ms(b.end - b.start) +
        (b.error ? "\n" + b.error : "") })));
    });
    var legend = h("div", { className: "legend" },
      ["succeeded", "failed", "interrupted", "running"].map(function (s) {
        return h("span", null, h("i", { className: "s-" + s }), s);
      }),
      h("span", null, h("i", { style: "background:#eaf2fd" }), "map phase"),
      h("span", null, h("i", { style: "background:#f1ecfb" }), "reduce phase"),
      h("span", { text: "reduce tasks are outlined" }));
    return h("section", { id: "timeline-section" },
      h("h2", { text: "Timeline: " + bars.length + " attempts of " + tasks.length + " tasks" }),
      h("div", { className: "timeline-wrap" }, chart), legend);
  }

  function band(chart, x1, x2, H, cls, label) {
    chart.appendChild(svg("rect", { className: cls, x: x1, y: 0, width: Math.max(1, x2 - x1), height: H }));
    chart.appendChild(svg("text", { className: "phase-label", x: x1 + 4, y: 11, text: label }));
  }

  // Tick offsets: 1, 2 or 5 times a power of ten, at most ten of them.
  function ticks(span) {
    var step = 1;
    var steps = [1, 2, 5];
    var k = 0;
    while (span / step > 10) {
      step = steps[(k + 1) % 3] * Math.pow(10, Math.floor((k + 1) / 3));
      k++;
    }
    var out = [];
    for (var d = 0; d <= span; d += step) out.push(d);
    return out;
  }

  var COLUMNS = [
    { key: "name", label: "input" },
    { key: "task", label: "task" },
    { key: "fate", label: "fate" },
    { key: "reason", label: "reason" },
    { key: "bytes_read", label: "bytes read", num: true },
    { key: "bytes", label: "bytes", num: true },
    { key: "records", label: "records", num: true },
    { key: "invalid", label: "invalid", num: true },
    { key: "retries", label: "download retries", num: true },
    { key: "attempts", label: "task attempts", num: true }
  ];

  function inputs(r) {
    var rows = fatesOf(r);
    var counts = { all: rows.length };
    FATES.forEach(function (f) { counts[f] = 0; });
    rows.forEach(function (row) { counts[row.fate] = (counts[row.fate] || 0) + 1; });
    var filters = h("div", { className: "filters", id: "filters" },
      ["all"].concat(FATES).map(function (f) {
        return h("button", {
          type: "button", id: "filter-" + f, "data-filter": f,
          className: state.filter === f ? "on" : "",
          onclick: function () { setFilter(f); }
        }, f + " (" + num(counts[f] || 0) + ")");
      }));
    var shown = rows.filter(function (row) { return state.filter === "all" || row.fate === state.filter; });
    if (state.sortKey) {
      var col = COLUMNS.filter(function (c) { return c.key === state.sortKey; })[0];
      shown.sort(function (a, b) {
        var va = a[state.sortKey], vb = b[state.sortKey];
        var c = col && col.num ? va - vb : String(va).localeCompare(String(vb));
        return c * state.sortDir;
      });
    }
    var head = h("tr", null, COLUMNS.map(function (c) {
      var cls = (c.num ? "num " : "") + (state.sortKey === c.key ? (state.sortDir > 0 ? "sorted-asc" : "sorted-desc") : "");
      return h("th", { className: cls, "data-key": c.key, onclick: function () { setSort(c.key); } }, c.label);
    }));
    var body = h("tbody", { id: "inputs-body" });
    shown.slice(0, MAX_ROWS).forEach(function (row) {
      body.appendChild(h("tr", { "data-fate": row.fate },
        h("td", { className: "name", text: row.name }),
        h("td", { className: "task", text: row.task }),
        h("td", null, h("span", { className: "fate s-" + row.fate, text: row.fate })),
        h("td", { className: "reason", text: row.reason }),
        h("td", { className: "num", text: bytes(row.bytes_read) }),
        h("td", { className: "num", text: bytes(row.bytes) }),
        h("td", { className: "num", text: num(row.records) }),
        h("td", { className: "num", text: num(row.invalid) }),
        h("td", { className: "num", text: num(row.retries) }),
        h("td", { className: "num", text: num(row.attempts) })));
    });
    return h("section", { id: "inputs-section" },
      h("h2", { text: "Inputs: every file's fate" }),
      filters,
      h("div", { className: "table-wrap" }, h("table", { id: "inputs" }, h("thead", null, head), body)),
      shown.length > MAX_ROWS ? h("p", { className: "note", text: "Showing the first " + num(MAX_ROWS) + " of " + num(shown.length) + " inputs; filter by fate to narrow." }) : null,
      h("p", { className: "note", text: "Filter with the buttons or the address: #status=failed. Sort by a column's header." }));
  }

  function keyValues(id, title, pairs) {
    if (pairs.length === 0) return h("div", { id: id }, h("h2", { text: title }), h("p", { className: "note", text: "none" }));
    return h("div", { id: id }, h("h2", { text: title }),
      h("table", null, h("tbody", null, pairs.map(function (p) {
        return h("tr", null, h("td", { text: p[0] }), h("td", { className: "num", text: p[1] }));
      }))));
  }

  function numbers(r) {
    var attempts = attemptsOf(r);
    var sh = r.shuffle || null;
    var shuffle = sh ? [
      ["map output records", num(sh.map_output_records)],
      ["map output", bytes(sh.map_output_bytes)],
      ["shuffled records", num(sh.shuffled_records)],
      ["shuffled", bytes(sh.shuffled_bytes)],
      ["spills", num(sh.spills)]
    ] : [];
    var peakTask = 0;
    attempts.forEach(function (a) { peakTask = Math.max(peakTask, Number(a.driver_peak_rss_bytes) || 0); });
    var memory = [["driver peak memory", bytes(r.driver_peak_rss_bytes || peakTask)]];
    if (isJob(r)) memory.push(["largest in one task attempt", bytes(peakTask)]);
    if (r.timings && isJob(r)) {
      memory.push(["map phase", ms(r.timings.map_ms)]);
      memory.push(["reduce phase", ms(r.timings.reduce_ms)]);
    }
    var counters = [];
    var c = r.counters || {};
    Object.keys(c).sort().forEach(function (g) {
      Object.keys(c[g] || {}).sort().forEach(function (name) {
        counters.push([g + " · " + name, num(c[g][name])]);
      });
    });
    if (r.counters_dropped) counters.push(["(updates dropped: too many counters)", num(r.counters_dropped)]);
    var notes = (r.notifications || []).map(function (n) {
      return [n.channel + " → " + n.target, n.ok ? "sent" : "FAILED: " + (n.error || "")];
    });
    return h("section", { id: "numbers" }, h("div", { className: "grid2" },
      keyValues("shuffle", "Shuffle", shuffle),
      keyValues("memory", "Memory and phases", memory),
      keyValues("counters", "Counters", counters),
      keyValues("notifications", "Notifications", notes)));
  }

  function failures(r) {
    var failed = attemptsOf(r).filter(function (a) { return a.status !== "succeeded"; });
    var items = failed.slice(0, MAX_FAILURES).map(function (a) {
      var t = taskOf(a);
      var exit = a.child && a.child.exit;
      var how = exit ? (exit.signal ? "killed by signal " + exit.signal : "exit code " + exit.code) : "";
      var tail = (a.child && a.child.stderr_tail) || [];
      return h("div", { className: "failure", "data-attempt": a.attempt_id },
        h("strong", { text: t.id + " attempt " + t.n }),
        h("span", { className: "badge s-" + a.status, text: a.status }),
        h("span", { className: "sub", text: "  " + (a.attempt_id || "") + (how ? " · " + how : "") + (a.child ? " · " + a.child.command : "") }),
        h("pre", { className: "failure-error", text: a.error || "(no error recorded)" }),
        tail.length ? h("div", { className: "sub", text: "last lines of the child's stderr:" }) : null,
        tail.length ? h("pre", { className: "stderr", text: tail.join("\n") }) : null);
    });
    return h("section", { id: "failures" },
      h("h2", { text: "Failures: " + failed.length + " attempts" }),
      items.length ? items : h("p", { className: "note", text: "No attempt failed." }),
      failed.length > MAX_FAILURES ? h("p", { className: "note", text: "Showing the first " + MAX_FAILURES + "." }) : null);
  }

  // ---- drawing and interaction --------------------------------------------------------------

  function render() {
    var started = performance.now();
    var r = state.report || {};
    var app = document.getElementById("app");
    var scroll = window.scrollY;
    app.replaceChildren(glance(r), timeline(r), inputs(r), numbers(r), failures(r));
    window.scrollTo(0, scroll);
    document.title = "polymr " + statusOf(r) + (r.job_id ? " · " + r.job_id : "");
    document.documentElement.setAttribute("data-status", statusOf(r));
    // How long drawing took (the script's part of loading the page), for measurements.
    document.documentElement.setAttribute("data-render-ms", String(Math.round(performance.now() - started)));
    document.documentElement.setAttribute("data-rendered", String((Number(document.documentElement.getAttribute("data-rendered")) || 0) + 1));
  }

  function rerenderInputs() {
    var old = document.getElementById("inputs-section");
    if (old) old.replaceWith(inputs(state.report || {}));
  }

  function setFilter(f) {
    state.filter = f;
    var hash = "#status=" + f;
    if (location.hash !== hash) {
      try { history.replaceState(null, "", hash); } catch (e) { /* a sandboxed file view */ }
    }
    rerenderInputs();
  }

  function setSort(key) {
    if (state.sortKey === key) state.sortDir = -state.sortDir;
    else { state.sortKey = key; state.sortDir = 1; }
    rerenderInputs();
  }

  function filterFromHash() {
    var m = /(?:^#|&)status=([a-z]+)/.exec(location.hash || "");
    var f = m ? m[1] : "all";
    return f === "all" || FATES.indexOf(f) >= 0 ? f : "all";
  }

  window.addEventListener("hashchange", function () {
    state.filter = filterFromHash();
    rerenderInputs();
  });

  function poll() {
    fetch(config.poll, { cache: "no-store" })
      .then(function (resp) {
        if (!resp.ok) throw new Error("HTTP " + resp.status);
        return resp.json();
      })
      .then(function (r) {
        state.pollErrors = 0;
        state.report = r;
        render();
        if (r.live) setTimeout(poll, POLL_MS);
      })
      .catch(function () {
        state.pollErrors++;
        if (state.pollErrors >= 4) {
          state.gone = true;
          render();
        } else {
          setTimeout(poll, POLL_MS);
        }
      });
  }

  render();
  if (config.live && config.poll && state.report.live) setTimeout(poll, POLL_MS);
})();
