// cdc dashboard: live updates over server-sent events and small SVG charts. No dependencies, no build step.
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";
  var body = document.body;
  var windowSeconds = (parseInt(body.dataset.historyMinutes, 10) || 10) * 60;
  var history = null;

  // ------------------------------------------------------------ forms that ask first
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  });

  // ------------------------------------------------------------ charts
  function el(name, attrs, parent) {
    var node = document.createElementNS(SVG, name);
    for (var key in attrs) { node.setAttribute(key, attrs[key]); }
    if (parent) { parent.appendChild(node); }
    return node;
  }

  function short(n) {
    if (n >= 1e9) { return (n / 1e9).toFixed(1) + "G"; }
    if (n >= 1e6) { return (n / 1e6).toFixed(1) + "M"; }
    if (n >= 1e3) { return (n / 1e3).toFixed(1) + "k"; }
    return (Math.round(n * 10) / 10).toString();
  }

  function clock(t) {
    var d = new Date(t * 1000);
    return d.toTimeString().slice(0, 8);
  }

  // series: [{label, values}], times: [unix seconds]
  function draw(svg, times, series) {
    while (svg.firstChild) { svg.removeChild(svg.firstChild); }
    // Draw in the element's own pixels, so text and lines are never stretched.
    var w = Math.max(120, Math.round(svg.clientWidth || 360)), h = Math.max(60, Math.round(svg.clientHeight || 120));
    svg.setAttribute("viewBox", "0 0 " + w + " " + h);
    var left = 4, top = 16, bottom = h - 16;
    var max = 0;
    series.forEach(function (s) { s.values.forEach(function (v) { if (v !== null && v > max) { max = v; } }); });
    var scale = max > 0 ? max * 1.1 : 1;
    for (var i = 0; i <= 2; i++) {
      var y = top + (bottom - top) * i / 2;
      el("line", {x1: left, x2: w, y1: y, y2: y, "class": "axis"}, svg);
    }
    el("text", {x: left, y: 11, "class": "label"}, svg).textContent = "max " + short(max);
    if (!times.length) {
      el("text", {x: w / 2 - 40, y: h / 2, "class": "label"}, svg).textContent = "waiting for samples";
      return;
    }
    var end = times[times.length - 1], start = Math.min(times[0], end - 1);
    start = Math.max(start, end - windowSeconds);
    var span = Math.max(1, end - start);
    el("text", {x: left, y: h - 3, "class": "label"}, svg).textContent = clock(start);
    el("text", {x: w - 2, y: h - 3, "class": "label end"}, svg).textContent = clock(end);
    series.forEach(function (s, n) {
      var points = [];
      s.values.forEach(function (v, k) {
        if (v === null || v === undefined || times[k] < start) { return; }
        var x = left + (w - left) * (times[k] - start) / span;
        var y = bottom - (bottom - top) * v / scale;
        points.push(x.toFixed(1) + "," + y.toFixed(1));
      });
      if (points.length === 1) { points.push(points[0]); }
      if (points.length) { el("polyline", {points: points.join(" "), "class": "line s" + (n % 8)}, svg); }
    });
    if (series.length > 1 || (series.length === 1 && series[0].label.length > 6)) {
      var x = w - 2;
      for (var k = series.length - 1; k >= 0 && x > 80; k--) {
        var label = el("text", {x: x, y: 11, "class": "legend end s" + (k % 8)}, svg);
        label.textContent = series[k].label;
        x -= 12 + label.getComputedTextLength();
      }
    }
  }

  function drawAll() {
    if (!history) { return; }
    var t = history.t;
    document.querySelectorAll("[data-chart]").forEach(function (figure) {
      var svg = figure.querySelector("svg"), kind = figure.dataset.chart, series = [];
      if (kind === "topic-lag") {
        var topic = history.topics[figure.dataset.topic];
        if (topic) {
          Object.keys(topic.lag).sort(function (a, b) { return a - b; }).forEach(function (p) {
            series.push({label: "p" + p, values: topic.lag[p]});
          });
        }
      } else if (kind === "lag-topics") {
        var ranked = Object.keys(history.topics).map(function (name) {
          var peak = 0, parts = history.topics[name].lag, total = [];
          Object.keys(parts).forEach(function (p) {
            parts[p].forEach(function (v, k) {
              if (v === null || v === undefined) { return; }
              total[k] = (total[k] || 0) + v;
              if (total[k] > peak) { peak = total[k]; }
            });
          });
          for (var k = 0; k < t.length; k++) { if (total[k] === undefined) { total[k] = null; } }
          return {label: name.split(".").slice(-2).join("."), values: total, peak: peak};
        }).filter(function (s) { return s.peak > 0; });
        ranked.sort(function (a, b) { return b.peak - a.peak; });
        series = ranked.slice(0, 8);
        if (!series.length) { series.push({label: "all topics", values: history.lag_total}); }
      } else if (kind === "rate-total") {
        series.push({label: "msg/s", values: history.rate_total});
      } else if (kind === "capture-bytes" || kind === "capture-seconds") {
        var field = kind === "capture-bytes" ? "bytes" : "seconds";
        Object.keys(history.capture).sort().forEach(function (system) {
          series.push({label: system, values: history.capture[system][field]});
        });
      }
      draw(svg, t, series);
    });
  }

  var resizing = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizing);
    resizing = setTimeout(drawAll, 150);
  });

  function pad(n) { var a = []; for (var i = 0; i < n; i++) { a.push(null); } return a; }

  function append(p) {
    if (!history || !p) { return; }
    if (history.t.length && history.t[history.t.length - 1] >= p.t) { return; }
    var n = history.t.length;
    history.t.push(p.t);
    ["lag_total", "rate_total", "errors_open", "dead_letter"].forEach(function (k) { history[k].push(p[k]); });
    Object.keys(p.topics).forEach(function (name) {
      var topic = history.topics[name] || (history.topics[name] = {lag: {}, rate: pad(n)});
      topic.rate.push(p.topics[name].rate);
      Object.keys(p.topics[name].lag).forEach(function (part) {
        (topic.lag[part] || (topic.lag[part] = pad(n))).push(p.topics[name].lag[part]);
      });
    });
    Object.keys(p.capture).forEach(function (system) {
      var c = history.capture[system] || (history.capture[system] = {bytes: pad(n), seconds: pad(n)});
      c.bytes.push(p.capture[system].bytes);
      c.seconds.push(p.capture[system].seconds);
    });
    // Fill series that got no value this time, then keep the window.
    var size = history.t.length;
    function fill(a) { while (a.length < size) { a.push(null); } }
    Object.keys(history.topics).forEach(function (name) {
      var topic = history.topics[name];
      fill(topic.rate);
      Object.keys(topic.lag).forEach(function (part) { fill(topic.lag[part]); });
    });
    Object.keys(history.capture).forEach(function (s) { fill(history.capture[s].bytes); fill(history.capture[s].seconds); });
    var cut = 0;
    while (cut < size && history.t[cut] < p.t - windowSeconds) { cut++; }
    if (cut) { trim(history, cut); }
  }

  function trim(node, cut) {
    Object.keys(node).forEach(function (k) {
      var v = node[k];
      if (Array.isArray(v)) { node[k] = v.slice(cut); } else if (v && typeof v === "object") { trim(v, cut); }
    });
  }

  // ------------------------------------------------------------ live updates
  function replace(id, html) {
    var node = document.getElementById(id);
    if (!node || html === null || html === undefined) { return; }
    if (node.dataset.html === html) { return; }
    node.dataset.html = html;
    node.innerHTML = html;
  }

  function connect() {
    var url = body.dataset.events;
    if (!url || !window.EventSource) { return; }
    var dot = document.getElementById("connection");
    var source = new EventSource(url);
    source.addEventListener("open", function () { if (dot) { dot.className = "connection live"; dot.title = "live"; } });
    source.addEventListener("error", function () { if (dot) { dot.className = "connection lost"; dot.title = "reconnecting"; } });
    source.addEventListener("update", function (event) {
      var data = JSON.parse(event.data);
      replace("live", data.html);
      replace("status", data.status);
      append(data.point);
      drawAll();
      body.dataset.version = data.version;
    });
  }

  function start() {
    var live = document.getElementById("live");
    if (live) { live.dataset.html = live.innerHTML; }
    if (document.querySelector("[data-chart]")) {
      fetch("/api/history?seconds=" + windowSeconds, {credentials: "same-origin"})
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (h) { history = h; drawAll(); connect(); })
        .catch(function () { connect(); });
    } else {
      connect();
    }
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
