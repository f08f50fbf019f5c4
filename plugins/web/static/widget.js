// botkit's chat widget: <script src="https://YOUR-BOT/chat/widget.js" async></script>
// adds a button to the page that opens the chat in a panel (an iframe of the chat page, so
// the conversation lives on the bot's origin: the host page can neither read nor change it).
// Options, as attributes of the script element: data-label (the button's text), data-title
// (the panel's accessible name), data-position ("right" or "left").
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.__botkitWidget) return;
  window.__botkitWidget = true;
  var source = new URL(script.src, window.location.href);
  var page = new URL(source.pathname.replace(/\/widget\.js$/, "") || "/", source.origin);
  page.searchParams.set("embed", "1");
  var side = script.getAttribute("data-position") === "left" ? "left" : "right";

  var button = document.createElement("button");
  button.type = "button";
  button.textContent = script.getAttribute("data-label") || "💬 Ask";
  button.setAttribute("aria-expanded", "false");
  button.setAttribute("data-botkit", "open");
  var b = button.style;
  b.position = "fixed"; b.bottom = "20px"; b[side] = "20px"; b.zIndex = "2147483646";
  b.border = "0"; b.borderRadius = "999px"; b.padding = "12px 18px"; b.cursor = "pointer";
  b.background = "#2b5bd7"; b.color = "#fff"; b.font = "600 15px system-ui, sans-serif";
  b.boxShadow = "0 4px 14px rgba(0,0,0,.25)";

  var frame = null;
  function open() {
    if (!frame) {
      frame = document.createElement("iframe");
      frame.src = page.href;
      frame.title = script.getAttribute("data-title") || "Chat";
      var f = frame.style;
      f.position = "fixed"; f.bottom = "80px"; f[side] = "20px"; f.zIndex = "2147483647";
      f.width = "min(400px, calc(100vw - 40px))"; f.height = "min(600px, calc(100vh - 120px))";
      f.border = "1px solid #dfe3ea"; f.borderRadius = "14px"; f.background = "#fff";
      f.boxShadow = "0 8px 30px rgba(0,0,0,.25)";
      document.body.appendChild(frame);
    } else {
      frame.style.display = frame.style.display === "none" ? "block" : "none";
    }
    button.setAttribute("aria-expanded", frame.style.display === "none" ? "false" : "true");
  }
  button.addEventListener("click", open);

  function place() { document.body.appendChild(button); }
  if (document.body) place(); else document.addEventListener("DOMContentLoaded", place);
})();
