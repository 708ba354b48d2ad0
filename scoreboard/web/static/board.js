/* Live board: renders the "board" snapshot, then applies Socket.IO deltas.
   Every team- or checker-provided text goes through textContent, never innerHTML. */
(function () {
  "use strict";
  var TEXTS = JSON.parse(document.getElementById("texts").textContent);
  var settings = JSON.parse(document.getElementById("settings").textContent);
  var params = new URLSearchParams(location.search);
  var lang = params.get("lang") || localStorage.getItem("adrange.lang") || settings.lang;
  if (!TEXTS[lang]) lang = settings.lang;
  var board = null, offset = 0, chart = null, pairs = {};
  var MAX_ATTACKS = 50;

  function t(key) { return (TEXTS[lang] && TEXTS[lang][key]) || key; }
  // The board's clock: the server's, or the game's replayed time when the replay page sets adrangeClock.
  function now() { return window.adrangeClock ? window.adrangeClock() : Date.now() / 1000 + offset; }
  function $(id) { return document.getElementById(id); }
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function teamName(id) {
    var found = (board.teams || []).find(function (x) { return x.id === id; });
    return found ? found.name : "#" + id;
  }
  function serviceName(id) {
    var found = (board.services || []).find(function (x) { return x.id === id; });
    return found ? found.name : "#" + id;
  }
  // 24-hour clock times in the page's language, not the browser's (a projector's browser may be English)
  function clock(ts) {
    return new Date(ts * 1000).toLocaleTimeString(lang === "zh" ? "zh-CN" : "en-GB", { hour12: false });
  }

  function applyTexts() {
    document.documentElement.lang = lang;
    document.querySelectorAll("[data-t]").forEach(function (n) { n.textContent = t(n.dataset.t); });
    document.querySelectorAll("button.lang").forEach(function (b) {
      b.classList.toggle("active", b.dataset.lang === lang);
    });
  }

  function renderRound() {
    var info = board.round;
    $("round-no").textContent = info.round;
    var state = $("state");
    state.textContent = t("state." + info.state);
    state.className = "state " + info.state;
    $("frozen").hidden = !board.frozen;
  }

  function tick() {
    if (!board) return;
    var info = board.round, left = null;
    if (info.state === "running" && info.round_start) {
      left = info.round_start + info.round_seconds - now();
    } else if (info.state === "paused" && info.remaining !== null) {
      left = info.remaining;
    }
    var text = "--:--";
    if (left !== null) {
      left = Math.max(0, Math.floor(left));
      text = Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0");
    }
    $("countdown").textContent = text;
  }

  // The ranking's font follows the viewport and the number of rows and columns (board.css),
  // so that every team of a big screen fits without scrolling.
  function renderRanking() {
    var head = $("ranking-head"), body = $("ranking-body"), table = $("ranking");
    table.style.setProperty("--rows", Math.max(1, board.ranking.length));
    table.style.setProperty("--services", board.services.length);
    head.replaceChildren();
    ["rank", "team", "total", "atk", "def", "sla"].forEach(function (k) {
      head.appendChild(el("th", "col-" + k, t(k)));
    });
    board.services.forEach(function (s) { head.appendChild(el("th", "col-service", s.name)); });
    body.replaceChildren();
    board.ranking.forEach(function (row) {
      var tr = el("tr");
      tr.dataset.team = row.team;
      var rankCell = el("td", "col-rank", row.rank);
      if (row.change) rankCell.appendChild(el("span", row.change > 0 ? "up" : "down",
        (row.change > 0 ? "▲" : "▼") + Math.abs(row.change)));
      tr.appendChild(rankCell);
      var team = el("td", "col-team");
      team.title = row.name;
      team.appendChild(el("span", "team-name", row.name));
      tr.appendChild(team);
      tr.appendChild(el("td", "col-total", row.total));
      tr.appendChild(el("td", "col-atk", row.atk));
      tr.appendChild(el("td", "col-def", row.def));
      tr.appendChild(el("td", "col-sla", row.sla));
      board.services.forEach(function (s) { tr.appendChild(statusCell(row, s)); });
      body.appendChild(tr);
    });
  }

  function statusCell(row, service) {
    var key = row.team + ":" + service.id;
    var cell = board.matrix[key] || {};
    var counts = (row.services || {})[service.id] || {};
    var status = cell.status || "NONE";
    var td = el("td", "cell status-" + status);
    td.dataset.box = key;
    td.dataset.status = status;
    td.title = cell.message || "";
    td.appendChild(el("div", "cell-service", service.name));  // shown on phones, where there is no header
    td.appendChild(el("div", "cell-status", cell.status ? t(status) : "-"));
    var sla = counts.sla === null || counts.sla === undefined ? "-" : counts.sla + "%";
    td.appendChild(el("div", "cell-counts",
      "▲" + (counts.stolen || 0) + " ▼" + (counts.lost || 0) + " · " + sla));
    td.addEventListener("click", function () {
      var box = $("cell-message");
      box.hidden = false;
      box.textContent = row.name + " / " + service.name + ": " + t(status) + (cell.message ? " — " + cell.message : "");
    });
    return td;
  }

  function attackItem(a) {
    var li = el("li", "attack");
    li.appendChild(el("span", "time", clock(a.t)));
    li.appendChild(el("span", "attacker", teamName(a.a)));
    li.appendChild(el("span", "arrow", "→"));
    li.appendChild(el("span", "victim", teamName(a.v)));
    li.appendChild(el("span", "service", serviceName(a.s)));
    return li;
  }

  function renderAttacks() {
    var feed = $("attack-feed");
    feed.replaceChildren();
    board.attacks.slice(0, MAX_ATTACKS).forEach(function (a) { feed.appendChild(attackItem(a)); });
    $("attack-feed-empty").hidden = feed.children.length > 0;
    renderAttackView();
  }

  function countPair(a, n) {
    var key = a.a + ">" + a.v + ">" + a.s;
    var p = pairs[key] || (pairs[key] = {a: a.a, v: a.v, s: a.s, n: 0, t: 0});
    p.n += n || 1;
    p.t = Math.max(p.t, a.t);
  }

  function renderAttackView() {
    var table = $("attack-view");
    table.replaceChildren();
    var head = el("tr");
    ["team", "victim", "service", "stolen"].forEach(function (k) { head.appendChild(el("th", null, t(k))); });
    table.appendChild(head);
    var shown = Object.values(pairs).sort(function (x, y) { return y.t - x.t; }).slice(0, 20);
    table.hidden = shown.length === 0;
    $("attack-view-empty").hidden = shown.length > 0;
    shown.forEach(function (p) {
      var tr = el("tr", now() - p.t < 5 ? "fresh" : "");
      tr.appendChild(el("td", "attacker", teamName(p.a)));
      tr.appendChild(el("td", "victim", teamName(p.v)));
      tr.appendChild(el("td", "service", serviceName(p.s)));
      tr.appendChild(el("td", "count", p.n));
      table.appendChild(tr);
    });
  }

  function renderFirstBloods() {
    var list = $("first-bloods");
    list.replaceChildren();
    var any = board.services.some(function (s) { return board.first_bloods[s.id]; });
    $("first-bloods-empty").hidden = any;
    if (!any) return;
    board.services.forEach(function (s) {
      var blood = board.first_bloods[s.id];
      var li = el("li", "blood");
      li.appendChild(el("span", "service", s.name));
      li.appendChild(el("span", "attacker", blood ? teamName(blood.a) : "—"));
      if (blood) li.appendChild(el("span", "time", t("round") + " " + blood.r + " · " + clock(blood.t)));
      list.appendChild(li);
    });
  }

  function renderAnnouncements() {
    var box = $("announcements");
    box.replaceChildren();
    var items = board.announcements.slice(-3).reverse();
    box.hidden = items.length === 0;
    $("announcements-empty").hidden = items.length > 0;
    items.forEach(function (a) {
      var p = el("p", "announcement");
      p.appendChild(el("span", "time", clock(a.t)));
      p.appendChild(el("span", "text", a.text));
      box.appendChild(p);
    });
  }

  var COLORS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45"];
  function chartOptions() {  // text as large as the panel's, so that it reads on a projector
    var size = Math.max(11, Math.round(parseFloat(getComputedStyle($("history-chart").parentNode).fontSize)));
    var ticks = {color: "#aaa", font: {size: size}};
    return {animation: false, responsive: true, maintainAspectRatio: false,
            plugins: {legend: {labels: {color: "#ddd", font: {size: size}, boxWidth: size * 2}}},
            scales: {x: {ticks: ticks}, y: {ticks: ticks}}};
  }

  function renderChart() {
    var history = board.history || {rounds: [], series: []};
    var empty = history.rounds.length === 0;
    $("history-empty").hidden = !empty;
    $("history-chart").style.visibility = empty ? "hidden" : "";
    if (typeof Chart === "undefined") return;
    var data = {
      labels: history.rounds,
      datasets: history.series.map(function (s, i) {
        return {label: s.name, data: s.totals, borderColor: COLORS[i % COLORS.length], fill: false, tension: 0.2};
      })
    };
    if (!chart) {
      chart = new Chart($("history-chart"), {type: "line", data: data, options: chartOptions()});
    } else {
      chart.data = data;
      chart.options = chartOptions();
      chart.update();
    }
  }

  function renderAll() {
    applyTexts();
    renderRound();
    renderRanking();
    renderAttacks();
    renderFirstBloods();
    renderAnnouncements();
    renderChart();
    tick();
  }

  var socket = io({transports: ["websocket"]});
  window.adrangeSocket = socket;
  socket.on("connect", function () { $("conn").textContent = t("connected"); $("conn").className = "conn on"; });
  socket.on("disconnect", function () { $("conn").textContent = t("disconnected"); $("conn").className = "conn off"; });
  socket.on("board", function (data) {
    board = data;
    offset = data.round.server_time - Date.now() / 1000;
    pairs = {};
    data.attacks.slice().reverse().forEach(function (a) { countPair(a, 1); });
    renderAll();
  });
  socket.on("ranking", function (data) {
    if (!board) return;
    board.ranking = data.ranking;
    renderRanking();
    renderChart();
  });
  socket.on("round", function (data) {
    if (!board) return;
    board.round = data;
    offset = data.server_time - Date.now() / 1000;
    if (data.history) { board.history = data.history; renderChart(); }
    renderRound();
    tick();
  });
  socket.on("statuses", function (list) {
    if (!board) return;
    list.forEach(function (data) {
      board.matrix[data.team + ":" + data.service] = {status: data.status, message: data.message, round: data.round};
    });
    renderRanking();
  });
  socket.on("attacks", function (batch) {
    if (!board) return;
    var feed = $("attack-feed");
    for (var i = batch.attacks.length - 1; i >= 0; i--) {  // oldest first, so the newest ends on top
      board.attacks.unshift(batch.attacks[i]);
      feed.insertBefore(attackItem(batch.attacks[i]), feed.firstChild);
    }
    board.attacks.length = Math.min(board.attacks.length, MAX_ATTACKS);
    while (feed.children.length > MAX_ATTACKS) feed.removeChild(feed.lastChild);
    $("attack-feed-empty").hidden = feed.children.length > 0;
    var newest = batch.attacks.length ? batch.attacks[0].t : 0;
    batch.pairs.forEach(function (p) { countPair({a: p.a, v: p.v, s: p.s, t: newest}, p.n); });
    renderAttackView();
  });
  socket.on("first_blood", function (data) {
    if (!board) return;
    board.first_bloods[data.s] = data;
    renderFirstBloods();
  });
  socket.on("announcement", function (data) {
    if (!board) return;
    board.announcements.push(data);
    renderAnnouncements();
  });

  document.querySelectorAll("button.lang").forEach(function (b) {
    b.addEventListener("click", function () {
      lang = b.dataset.lang;
      localStorage.setItem("adrange.lang", lang);
      if (board) renderAll(); else applyTexts();
    });
  });
  $("big-toggle").addEventListener("click", function () {
    document.body.classList.toggle("big");
    if (board) renderChart();  // its fonts follow the new size
  });
  applyTexts();
  setInterval(tick, 250);
})();
