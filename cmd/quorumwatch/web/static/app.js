// The status page, live: the server sends its whole state at once and at
// every change corosync reports (server-sent events on "events"); this
// script renders each one over the server-rendered snapshot. Without
// JavaScript the snapshot stays as it is.
(function () {
  "use strict";

  var $ = function (id) { return document.getElementById(id); };

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }

  function setText(id, text) { $(id).textContent = text; }

  function localTime(iso) {
    var d = new Date(iso);
    if (isNaN(d.getTime()) || d.getUTCFullYear() < 2) { return ""; }
    return d.toLocaleString();
  }

  function nodeRow(n) {
    var tr = el("tr", "n-" + n.state + (n.local ? " local" : ""));
    tr.dataset.nodeId = String(n.id);
    var name = el("td", "name", n.name || "(no name)");
    if (n.local) {
      name.appendChild(document.createTextNode(" "));
      name.appendChild(el("span", "tag", "this node"));
    }
    tr.appendChild(name);
    tr.appendChild(el("td", "num", String(n.id)));
    tr.appendChild(el("td", "num", String(n.votes)));
    var st = el("td");
    st.appendChild(el("span", "state", n.state));
    tr.appendChild(st);
    return tr;
  }

  function qdeviceRow(q) {
    var tr = el("tr", "qdevice");
    tr.dataset.nodeId = "0";
    var name = el("td", "name", q.name);
    name.appendChild(document.createTextNode(" "));
    name.appendChild(el("span", "tag", "quorum device"));
    tr.appendChild(name);
    tr.appendChild(el("td", "num", "0"));
    tr.appendChild(el("td", "num", String(q.votes)));
    var st = el("td");
    st.appendChild(el("span", "state", (q.alive ? "alive" : "not alive") + ", " +
      (q.cast_vote ? "votes" : "does not vote")));
    tr.appendChild(st);
    return tr;
  }

  function render(s) {
    var p = s.picture;
    var banner = $("banner");
    banner.className = "banner s-" + s.status;
    banner.dataset.status = s.status;
    setText("verdict", s.word);
    setText("reason", s.reason);
    $("reason").hidden = !s.reason;
    setText("summary", s.summary);
    document.title = s.word + " · corosync quorum";

    var rows = document.createDocumentFragment();
    p.nodes.forEach(function (n) { rows.appendChild(nodeRow(n)); });
    if (p.qdevice) { rows.appendChild(qdeviceRow(p.qdevice)); }
    $("nodes").replaceChildren(rows);
    $("no-nodes").hidden = p.nodes.length > 0;

    setText("v-total", String(p.total_votes));
    setText("v-quorum", String(p.quorum));
    setText("v-expected", String(p.expected_votes));
    setText("v-highest", String(p.highest_expected));
    setText("v-flags", p.flags.length ? p.flags.join(" ") : "none");
    setText("v-ring", p.ring_id_text);
    setText("v-node", String(p.node_id));
    setText("v-provider", p.provider || "none");

    var items = document.createDocumentFragment();
    s.changes.forEach(function (c) {
      var li = el("li", "s-" + c.status);
      var t = el("time", "", localTime(c.time));
      t.dateTime = c.time;
      li.appendChild(t);
      li.appendChild(document.createTextNode(" "));
      li.appendChild(el("span", "", c.text));
      items.appendChild(li);
    });
    $("changes").replaceChildren(items);
  }

  function setLive(on) {
    var live = $("live");
    live.className = "live " + (on ? "on" : "off");
    live.textContent = on ? "Live: updated as corosync reports changes." :
      "Connection to quorumwatch lost: reconnecting…";
  }

  function start() {
    if (!window.EventSource) { return; }
    // Times of the snapshot, in the reader's own time zone.
    Array.prototype.forEach.call(document.querySelectorAll("#changes time"), function (t) {
      t.textContent = localTime(t.dateTime);
    });
    var es = new EventSource("events");
    es.addEventListener("state", function (e) {
      render(JSON.parse(e.data));
      setLive(true);
    });
    // EventSource reconnects by itself; its first message is the whole
    // state again.
    es.addEventListener("error", function () { setLive(false); });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
