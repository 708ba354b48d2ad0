/* The replay's control bar: play/pause, speed, jump to the end of a round, a time scrubber.
   board.js draws the board from the server's messages; this script only steers the replay
   ("replay" messages) and gives the board the replayed game's clock (window.adrangeClock). */
(function () {
  "use strict";
  var TEXTS = JSON.parse(document.getElementById("replay-texts").textContent);
  var socket = window.adrangeSocket;
  var status = null, receivedAt = 0, dragging = false, roundsShown = -1;

  function $(id) { return document.getElementById(id); }
  function lang() { return TEXTS[document.documentElement.lang] ? document.documentElement.lang : "en"; }
  function t(key, r) { return (TEXTS[lang()][key] || key).replace("{r}", r); }
  function send(message) { socket.emit("replay", message); }

  window.adrangeClock = function () {
    if (!status) return Date.now() / 1000;
    var clock = status.clock;
    if (status.playing) clock += (Date.now() / 1000 - receivedAt) * status.speed;
    return Math.min(clock, status.end);
  };

  function clockText(ts) {
    return new Date(ts * 1000).toLocaleTimeString(lang() === "zh" ? "zh-CN" : "en-GB", {hour12: false});
  }

  function renderTexts() {
    document.querySelectorAll("[data-rt]").forEach(function (n) { n.textContent = t(n.dataset.rt); });
    roundsShown = -1;
    render();
  }

  function renderRounds() {
    if (!status || status.rounds.length === roundsShown) return;
    roundsShown = status.rounds.length;
    var select = $("replay-round");
    select.replaceChildren();
    var start = document.createElement("option");
    start.value = "0";
    start.textContent = t("game_start");
    select.appendChild(start);
    status.rounds.forEach(function (r) {
      var option = document.createElement("option");
      option.value = String(r.r);
      option.textContent = t("after_round", r.r);
      select.appendChild(option);
    });
  }

  function render() {
    if (!status) return;
    renderRounds();
    $("replay-toggle").textContent = status.playing ? "❚❚ " + t("pause") : "▶ " + t("play");
    $("replay-speed").value = String(status.speed);
    $("replay-round").value = String(status.closed_round);
    var scrub = $("replay-scrub");
    scrub.max = String(Math.max(0, status.end - status.start));
    if (!dragging) scrub.value = String(window.adrangeClock() - status.start);
    $("replay-clock").textContent = clockText(window.adrangeClock());
  }

  var params = new URLSearchParams(location.search), asked = params.get("round");
  socket.on("connect", function () { asked = params.get("round"); });  // again after a reconnect
  socket.on("replay", function (data) {
    if (asked !== null) {  // ?round=N: open the page at the end of round N
      send({action: "seek", round: Number(asked)});
      asked = null;
    }
    status = data;
    receivedAt = Date.now() / 1000;
    window.adrangeReplay = data;
    render();
  });
  $("replay-toggle").addEventListener("click", function () { send({action: status && status.playing ? "pause" : "play"}); });
  $("replay-speed").addEventListener("change", function (e) { send({action: "speed", speed: Number(e.target.value)}); });
  $("replay-round").addEventListener("change", function (e) { send({action: "seek", round: Number(e.target.value)}); });
  $("replay-prev").addEventListener("click", function () {
    if (status) send({action: "seek", round: Math.max(0, status.closed_round - 1)});
  });
  $("replay-next").addEventListener("click", function () {
    if (status && status.rounds.length) {
      send({action: "seek", round: Math.min(status.rounds[status.rounds.length - 1].r, status.closed_round + 1)});
    }
  });
  var scrub = $("replay-scrub");
  scrub.addEventListener("input", function () { dragging = true; });
  scrub.addEventListener("change", function () {
    dragging = false;
    if (status) send({action: "seek", t: status.start + Number(scrub.value)});
  });
  document.querySelectorAll("button.lang").forEach(function (b) {
    b.addEventListener("click", function () { setTimeout(renderTexts, 0); });  // after board.js switched
  });
  renderTexts();
  setInterval(render, 250);
})();
