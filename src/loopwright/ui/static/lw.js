/* Loopwright dashboard: charts (uPlot) and small behaviours. No inline scripts (the CSP forbids
   them): pages mark elements with data-* attributes and this file finds them.

   A chart is <div class="lw-chart" data-src="URL"> (the spec fetched as JSON) or
   data-spec="ID" (the spec in <script type="application/json" id="ID">). The spec:
     {"kind": "line" | "bars" | "points",          (default "line")
      "x_label": "step", "x_time": false,           (x_time: x is epoch milliseconds)
      "y_label": "loss", "y_log": false,
      "series": [{"label": "run 1a2b: loss", "x": [0, 1, ...], "y": [0.9, 0.7, ...]}],
      "note": "downsampled: 2,000 of 1,000,000 points"}   (optional, shown under the chart)
   data-controls="smoothing,axis" adds an EMA smoothing slider and an x-axis picker; the
   picker's choices are data-axes="step,time" and it refetches data-src with ?x=<choice>.
   Drag across a chart to zoom into that range; double-click to zoom back out.
   A form with data-confirm="text" asks before it submits. */
(function () {
  "use strict";

  var PALETTE = ["#1f4fa3", "#e0702b", "#2a9d5b", "#c0392b", "#8e44ad", "#16a0b4",
                 "#b8860b", "#d6338a", "#5d6d7e", "#6b8e23"];

  function ema(values, weight) {
    if (!weight) return values;
    var out = new Array(values.length), last = 0, seen = 0;
    for (var i = 0; i < values.length; i++) {
      var v = values[i];
      if (v == null || !isFinite(v)) { out[i] = v; continue; }
      last = last * weight + (1 - weight) * v;
      seen++;
      out[i] = last / (1 - Math.pow(weight, seen));  // debiased, as TensorBoard smooths
    }
    return out;
  }

  function aligned(spec) {
    var tables = spec.series.map(function (s) {
      var xs = spec.x_time ? s.x.map(function (t) { return t / 1000; }) : s.x;
      return [xs, s.y];
    });
    if (tables.length === 1) return tables[0];
    return uPlot.join(tables);
  }

  function options(spec, width, height) {
    var kind = spec.kind || "line";
    var series = [{ label: spec.x_label || "x" }];
    spec.series.forEach(function (s, i) {
      var color = PALETTE[i % PALETTE.length];
      var one = { label: s.label, stroke: color, width: 1.5, spanGaps: true,
                  points: { show: kind === "points" || s.x.length < 40 } };
      if (kind === "bars") {
        one.fill = color + "99";
        one.paths = uPlot.paths.bars({ size: [0.9, 60] });
        one.points = { show: false };
      }
      if (kind === "points") { one.paths = function () { return null; }; }
      series.push(one);
    });
    return {
      width: width, height: height, series: series,
      scales: { x: { time: !!spec.x_time }, y: { distr: spec.y_log ? 3 : 1 } },
      axes: [{ label: spec.x_label || "" }, { label: spec.y_label || "", size: 60 }],
      cursor: { drag: { x: true, y: false } },
      legend: { live: true }
    };
  }

  function controls(box, redraw, refetch) {
    var wanted = (box.dataset.controls || "").split(",").filter(Boolean);
    if (!wanted.length) return;
    var bar = document.createElement("div");
    bar.className = "chart-controls";
    if (wanted.indexOf("smoothing") >= 0) {
      var label = document.createElement("label");
      label.textContent = "Smoothing ";
      var slider = document.createElement("input");
      slider.type = "range"; slider.min = "0"; slider.max = "0.99"; slider.step = "0.01";
      slider.value = "0"; slider.setAttribute("aria-label", "smoothing");
      slider.addEventListener("input", function () { redraw(parseFloat(slider.value)); });
      label.appendChild(slider);
      bar.appendChild(label);
    }
    var axes = (box.dataset.axes || "").split(",").filter(Boolean);
    if (wanted.indexOf("axis") >= 0 && axes.length > 1) {
      var pick = document.createElement("label");
      pick.textContent = "X axis ";
      var select = document.createElement("select");
      select.setAttribute("aria-label", "x axis");
      axes.forEach(function (a) {
        var o = document.createElement("option"); o.value = a; o.textContent = a;
        select.appendChild(o);
      });
      select.addEventListener("change", function () { refetch(select.value); });
      pick.appendChild(select);
      bar.appendChild(pick);
    }
    box.parentNode.insertBefore(bar, box);
  }

  function fail(box, message) {
    box.textContent = "";
    var p = document.createElement("p");
    p.className = "chart-error";
    p.textContent = message;
    box.appendChild(p);
  }

  function draw(box, spec) {
    box.textContent = "";
    if (!spec.series || !spec.series.length || !spec.series.some(function (s) { return s.x.length; })) {
      var p = document.createElement("p");
      p.className = "empty";
      p.textContent = "No points to chart.";
      box.appendChild(p);
      return null;
    }
    var height = parseInt(box.dataset.height || "260", 10);
    var width = Math.max(box.clientWidth, 300);
    var data = aligned(spec);
    var plot = new uPlot(options(spec, width, height), data, box);
    box._lw = { plot: plot, data: data, spec: spec, smoothing: 0 };
    if (spec.note) {
      var note = document.createElement("div");
      note.className = "muted";
      note.textContent = spec.note;
      box.appendChild(note);
    }
    return plot;
  }

  function smooth(box, weight) {
    var state = box._lw;
    if (!state) return;
    state.smoothing = weight;
    var data = [state.data[0]];
    for (var i = 1; i < state.data.length; i++) data.push(ema(state.data[i], weight));
    state.plot.setData(data);
  }

  function load(box, url) {
    return fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok) {
          return r.text().then(function (t) { throw new Error("HTTP " + r.status + ": " + t.slice(0, 200)); });
        }
        return r.json();
      });
  }

  function withAxis(src, axis) {
    var url = new URL(src, window.location.href);
    url.searchParams.set("x", axis);
    return url.pathname + url.search;
  }

  function chart(box) {
    if (box._lwStarted) return;
    box._lwStarted = true;
    var redraw = function (weight) { smooth(box, weight); };
    if (box.dataset.spec) {
      var holder = document.getElementById(box.dataset.spec);
      try {
        draw(box, JSON.parse(holder.textContent));
      } catch (e) {
        fail(box, "This chart could not be drawn: " + e.message);
      }
      controls(box, redraw, function () {});
      return;
    }
    var refetch = function (axis) {
      var url = axis ? withAxis(box.dataset.src, axis) : box.dataset.src;
      return load(box, url).then(function (spec) {
        var old = box._lw;
        if (old) old.plot.destroy();
        box._lw = null;
        draw(box, spec);
        if (old && old.smoothing) smooth(box, old.smoothing);
      }).catch(function (e) { fail(box, "This chart's data could not be loaded: " + e.message); });
    };
    controls(box, redraw, refetch);
    refetch(null);
  }

  function resize() {
    document.querySelectorAll(".lw-chart").forEach(function (box) {
      if (box._lw) box._lw.plot.setSize({ width: Math.max(box.clientWidth, 300), height: box._lw.plot.height });
    });
  }

  function init(root) {
    (root || document).querySelectorAll(".lw-chart").forEach(chart);
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  }, true);
  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:afterSettle", function (event) { init(event.target); });
  var timer = null;
  window.addEventListener("resize", function () {
    clearTimeout(timer);
    timer = setTimeout(resize, 150);
  });

  window.LW = { init: init, draw: draw, palette: PALETTE };
})();
