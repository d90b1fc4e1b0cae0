/* Live updates for the feed page (progressive enhancement: without it the page is complete).
 *
 * An EventSource on the URL in #feed[data-live] says *that* something new matched
 * ("post", with the seq) or that an event was retracted ("retract", with its id).
 * No post text travels on that stream. On "post" we fetch the server-rendered,
 * escaped HTML of the new items from #feed[data-fragment] and move its nodes into
 * the list; on "retract" we remove the item with that id.
 */
(function () {
  "use strict";

  var feed = document.getElementById("feed");
  if (!feed || !window.EventSource || !window.fetch || !window.DOMParser) {
    return;
  }
  var liveUrl = feed.getAttribute("data-live");
  var fragmentUrl = feed.getAttribute("data-fragment");
  if (!liveUrl || !fragmentUrl) {
    return;
  }
  var after = parseInt(feed.getAttribute("data-after") || "0", 10) || 0;
  var head = parseInt(feed.getAttribute("data-head") || "0", 10) || 0;
  var status = document.getElementById("live-status");
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
    var doc = new DOMParser().parseFromString(html, "text/html");
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

  function pull() {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    fetch(join(fragmentUrl, "after", after), { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("fragment " + response.status);
        }
        return response.text();
      })
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

  var source = new EventSource(join(liveUrl, "after", head));
  source.addEventListener("open", function () {
    setStatus("Live: new posts appear here as they are published.", true);
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
