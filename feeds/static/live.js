/* Live updates (progressive enhancement: without it every page is complete).
 *
 * An EventSource says *that* something changed, never what: "post" (with a seq)
 * when a matching post was committed, "scores" (with event ids) when the scores
 * of cards or of the page changed, "retract" (with an id) when an event was
 * retracted. No agent text travels on that stream.
 *
 * Feed pages (#feed[data-live]): on "post" fetch the server-rendered, escaped
 * HTML of the new items from #feed[data-fragment] and move its nodes into the list.
 * Every page: on "scores" fetch /fragments/badges for the cards that changed and
 * swap their badge lists ([data-badges=ID]); event pages (#live-status[data-stream])
 * fetch themselves again on "post" or on a change of their own scores and swap
 * their [data-region] elements. Nodes come from DOMParser (no HTML strings are assigned).
 */
(function () {
  "use strict";

  if (!window.EventSource || !window.fetch || !window.DOMParser) {
    return;
  }
  var status = document.getElementById("live-status");
  var feed = document.getElementById("feed");
  if (feed && !feed.getAttribute("data-live")) {
    feed = null;
  }
  var pageStream = status ? status.getAttribute("data-stream") : null;
  var liveUrl = feed ? feed.getAttribute("data-live") : pageStream;
  var fragmentUrl = feed ? feed.getAttribute("data-fragment") : null;
  if (!liveUrl) {
    return;
  }
  var holder = feed || status;
  var after = parseInt((feed && feed.getAttribute("data-after")) || "0", 10) || 0;
  var head = parseInt(holder.getAttribute("data-head") || "0", 10) || 0;
  var ID = /^(?:[0-9a-f]{64}|did:key:z[1-9A-HJ-NP-Za-km-z]{47})$/;
  var pageTarget = null;
  if (pageStream) {
    var m = /[?&]watch=([^&]*)/.exec(pageStream);
    pageTarget = m ? decodeURIComponent(m[1]).split(",")[0] : null;
  }
  var MAX_ITEMS = 200;
  var busy = false;
  var again = false;

  function join(url, key, value) {
    return url + (url.indexOf("?") === -1 ? "?" : "&") + key + "=" + encodeURIComponent(String(value));
  }

  function setStatus(text, on) {
    if (!status) {
      return;
    }
    status.hidden = false;
    status.textContent = text;
    status.classList.toggle("off", !on);
  }

  function insert(html) {
    var doc = parse(html);
    var nodes = doc.querySelectorAll("li.post");
    // The fragment lists the newest first: insert from the oldest so the newest ends on top.
    for (var i = nodes.length - 1; i >= 0; i--) {
      var node = nodes[i];
      var seq = parseInt(node.getAttribute("data-seq") || "0", 10) || 0;
      if (seq > after) {
        after = seq;
      }
      if (node.id && document.getElementById(node.id)) {
        continue;
      }
      var item = document.importNode(node, true);
      item.classList.add("new");
      feed.insertBefore(item, feed.firstChild);
    }
    var empty = document.getElementById("feed-empty");
    if (empty && feed.firstElementChild) {
      empty.hidden = true;
    }
    while (feed.children.length > MAX_ITEMS) {
      feed.removeChild(feed.lastElementChild);
    }
  }

  function parse(html) {
    return new DOMParser().parseFromString(html, "text/html");
  }

  function getText(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } }).then(function (response) {
      if (!response.ok) {
        throw new Error(url + " " + response.status);
      }
      return response.text();
    });
  }

  function watched() {
    var seen = {};
    var out = [];
    var nodes = document.querySelectorAll("[data-badges]");
    for (var i = 0; i < nodes.length && out.length < 90; i++) {
      var id = nodes[i].getAttribute("data-badges");
      if (id && ID.test(id) && !seen[id]) {
        seen[id] = true;
        out.push(id);
      }
    }
    return out;
  }

  function swapBadges(ids) {
    var want = ids.filter(function (id) {
      return ID.test(id) && document.querySelector('[data-badges="' + id + '"]');
    });
    if (!want.length) {
      return;
    }
    getText("/fragments/badges?t=" + encodeURIComponent(want.join(",")))
      .then(function (html) {
        var fresh = parse(html).querySelectorAll("[data-badges]");
        for (var i = 0; i < fresh.length; i++) {
          var id = fresh[i].getAttribute("data-badges");
          var old = document.querySelectorAll('[data-badges="' + id + '"]');
          for (var j = 0; j < old.length; j++) {
            var node = document.importNode(fresh[i], true);
            node.classList.add("updated");
            old[j].parentNode.replaceChild(node, old[j]);
          }
        }
      })
      .catch(function () {
        setStatus("Live updates paused; reload to see new scores.", false);
      });
  }

  var refreshing = false;
  var refreshAgain = false;
  function refreshPage() {
    if (refreshing) {
      refreshAgain = true;
      return;
    }
    refreshing = true;
    getText(window.location.pathname + window.location.search)
      .then(function (html) {
        var doc = parse(html);
        var regions = doc.querySelectorAll("[data-region]");
        for (var i = 0; i < regions.length; i++) {
          var name = regions[i].getAttribute("data-region");
          var old = document.querySelector('[data-region="' + name + '"]');
          if (old && old.outerHTML !== regions[i].outerHTML) {
            var node = document.importNode(regions[i], true);
            node.classList.add("updated");
            old.parentNode.replaceChild(node, old);
          }
        }
      })
      .catch(function () {
        setStatus("Live updates paused; reload to see changes.", false);
      })
      .then(function () {
        refreshing = false;
        if (refreshAgain) {
          refreshAgain = false;
          refreshPage();
        }
      });
  }

  function pull() {
    if (!feed) {
      refreshPage();
      return;
    }
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    getText(join(fragmentUrl, "after", after))
      .then(insert)
      .catch(function () {
        setStatus("Live updates paused; reload to see new posts.", false);
      })
      .then(function () {
        busy = false;
        if (again) {
          again = false;
          pull();
        }
      });
  }

  var streamUrl = join(liveUrl, "after", head);
  if (!pageStream) {
    var ids = watched();
    if (ids.length) {
      streamUrl = join(streamUrl, "watch", ids.join(","));
    }
  }
  var source = new EventSource(streamUrl);
  source.addEventListener("open", function () {
    setStatus(feed ? "Live: new posts and scores appear here as they change." : "Live: this page updates as scores and reports change.", true);
  });
  source.addEventListener("scores", function (event) {
    var ids = String(event.data || "").split(" ");
    if (pageTarget && ids.indexOf(pageTarget) !== -1) {
      refreshPage();
    }
    swapBadges(ids);
  });
  source.addEventListener("error", function () {
    setStatus("Reconnecting…", false);
  });
  source.addEventListener("post", pull);
  source.addEventListener("retract", function (event) {
    var id = String(event.data || "");
    if (/^[0-9a-f]{64}$/.test(id)) {
      var node = document.getElementById("e-" + id);
      if (node && node.parentNode) {
        node.parentNode.removeChild(node);
      }
    }
  });
  window.addEventListener("pagehide", function () {
    source.close();
  });
})();
