// botkit's web chat: one WebSocket to the bot, the conversation drawn with DOM nodes only.
// Every text from a question or an answer becomes a text node (never HTML), so nothing a
// person or a backend writes can add elements to the page; links are made only for
// http(s) and mailto URLs.
(function () {
  "use strict";

  var settings = JSON.parse(document.getElementById("botkit-settings").textContent);
  var log = document.getElementById("log");
  var welcome = document.getElementById("welcome");
  var form = document.getElementById("ask");
  var box = document.getElementById("question");
  var sendButton = document.getElementById("send");
  var newButton = document.getElementById("new-conversation");
  var connection = document.getElementById("connection");
  var limitNote = document.getElementById("limit");

  welcome.textContent = settings.welcome;
  box.maxLength = settings.maxQuestion;
  if (settings.embedded) document.documentElement.classList.add("embedded");

  // -- who this browser is (local storage: a reload continues the conversation) ----------------

  var memory = {};
  function load(key) {
    try { return window.localStorage.getItem(key); } catch (e) { return memory[key] || null; }
  }
  function save(key, value) {
    try { window.localStorage.setItem(key, value); } catch (e) { memory[key] = value; }
  }
  function randomId(bytes) {
    var data = new Uint8Array(bytes);
    window.crypto.getRandomValues(data);
    var text = "";
    for (var i = 0; i < data.length; i++) text += String.fromCharCode(data[i]);
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  var browser = load("botkit.browser");
  if (!browser || !/^[A-Za-z0-9_-]{16,128}$/.test(browser)) {
    browser = randomId(24);
    save("botkit.browser", browser);
  }
  var conversation = load("botkit.conversation");
  if (!conversation || !/^[A-Za-z0-9_-]{6,64}$/.test(conversation)) {
    conversation = randomId(12);
    save("botkit.conversation", conversation);
  }
  var votes = {};
  try { votes = JSON.parse(load("botkit.votes") || "{}") || {}; } catch (e) { votes = {}; }

  // -- Markdown as the renderer writes it, as DOM nodes -------------------------------------------

  function el(tag, className) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    return node;
  }

  function safeUrl(text) {
    try {
      var url = new URL(text);
      if (url.protocol === "http:" || url.protocol === "https:" || url.protocol === "mailto:") return url.href;
    } catch (e) { /* not a URL */ }
    return null;
  }

  // `[label](url)` or `[label](<url>)` at `start`; the label may hold brackets ("[[1]](<url>)")
  function parseLink(text, start) {
    var depth = 0;
    var i = start;
    for (; i < text.length; i++) {
      var c = text.charAt(i);
      if (c === "\\") { i++; continue; }
      if (c === "[") depth++;
      else if (c === "]" && --depth === 0) break;
    }
    if (i >= text.length || text.charAt(i + 1) !== "(") return null;
    var label = text.slice(start + 1, i);
    var urlStart = i + 2;
    var url, end;
    if (text.charAt(urlStart) === "<") {
      end = text.indexOf(">)", urlStart);
      if (end < 0) return null;
      url = text.slice(urlStart + 1, end);
      end += 2;
    } else {
      end = text.indexOf(")", urlStart);
      if (end < 0) return null;
      url = text.slice(urlStart, end);
      end += 1;
    }
    if (!label || /\s/.test(url)) return null;
    return { label: label, url: url, end: end };
  }

  function closing(text, from, marker) {
    var i = from;
    while (i < text.length) {
      if (text.charAt(i) === "\\") { i += 2; continue; }
      if (text.substr(i, marker.length) === marker) return i;
      i++;
    }
    return -1;
  }

  function inline(text, parent) {
    var buffer = "";
    function flush() {
      if (buffer) { parent.appendChild(document.createTextNode(buffer)); buffer = ""; }
    }
    var i = 0;
    while (i < text.length) {
      var c = text.charAt(i);
      var next = text.charAt(i + 1);
      if (c === "\\" && next && /[\\`*_~\[\]<>|()#+\-.!{}]/.test(next)) {
        buffer += next;
        i += 2;
        continue;
      }
      if (c === "`") {
        var end = text.indexOf("`", i + 1);
        if (end > i + 1) {
          flush();
          var code = el("code");
          code.textContent = text.slice(i + 1, end);
          parent.appendChild(code);
          i = end + 1;
          continue;
        }
      }
      if (c === "[") {
        var link = parseLink(text, i);
        if (link) {
          flush();
          var href = safeUrl(link.url);
          var node = href ? el("a") : el("span");
          if (href) {
            node.href = href;
            node.target = "_blank";
            node.rel = "noopener noreferrer";
          }
          inline(link.label, node);
          parent.appendChild(node);
          i = link.end;
          continue;
        }
      }
      if ((c === "*" || c === "_") && next === c) {
        var strongEnd = closing(text, i + 2, c + c);
        if (strongEnd > i + 2) {
          flush();
          var strong = el("strong");
          inline(text.slice(i + 2, strongEnd), strong);
          parent.appendChild(strong);
          i = strongEnd + 2;
          continue;
        }
      }
      if ((c === "*" || c === "_") && next && next !== " " && next !== c
          && !(c === "_" && /[A-Za-z0-9]/.test(text.charAt(i - 1) || ""))) {
        var emEnd = closing(text, i + 1, c);
        if (emEnd > i + 1 && text.charAt(emEnd - 1) !== " "
            && !(c === "_" && /[A-Za-z0-9]/.test(text.charAt(emEnd + 1) || ""))) {
          flush();
          var em = el("em");
          inline(text.slice(i + 1, emEnd), em);
          parent.appendChild(em);
          i = emEnd + 1;
          continue;
        }
      }
      buffer += c;
      i++;
    }
    flush();
  }

  function paragraph(lines, parent) {
    var p = el("p");
    lines.forEach(function (line, n) {
      if (n) p.appendChild(el("br"));
      inline(line, p);
    });
    parent.appendChild(p);
  }

  function markdown(text, parent) {
    var lines = text.replace(/\r\n?/g, "\n").split("\n");
    var para = [];
    var list = null;
    function endParagraph() {
      if (para.length) paragraph(para, parent);
      para = [];
    }
    for (var i = 0; i < lines.length; i++) {
      var line = lines[i];
      var fence = /^\s*```/.test(line);
      if (fence) {
        endParagraph();
        list = null;
        var code = [];
        for (i++; i < lines.length && !/^\s*```/.test(lines[i]); i++) code.push(lines[i]);
        var pre = el("pre");
        var block = el("code");
        block.textContent = code.join("\n");
        pre.appendChild(block);
        parent.appendChild(pre);
        continue;
      }
      var item = /^\s*(?:[-*•]|\d+[.)])\s+(.*)$/.exec(line);
      if (item) {
        endParagraph();
        if (!list) {
          list = el(/^\s*\d/.test(line) ? "ol" : "ul");
          parent.appendChild(list);
        }
        var li = el("li");
        inline(item[1], li);
        list.appendChild(li);
        continue;
      }
      if (!line.trim()) {
        endParagraph();
        list = null;
        continue;
      }
      var heading = /^#{1,6}\s+(.*)$/.exec(line);
      if (heading) {
        endParagraph();
        list = null;
        var h = el("p", "heading");
        var strong = el("strong");
        inline(heading[1], strong);
        h.appendChild(strong);
        parent.appendChild(h);
        continue;
      }
      list = null;
      para.push(line);
    }
    endParagraph();
  }

  // -- the conversation on the page -----------------------------------------------------------------

  var items = {}; // "q:<id>" or "m:<id>" -> element

  function scrollDown() {
    log.scrollTop = log.scrollHeight;
  }

  function clearLog() {
    items = {};
    while (log.lastChild && log.lastChild !== welcome) log.removeChild(log.lastChild);
    welcome.hidden = false;
  }

  function showQuestion(id, text) {
    var node = items["q:" + id];
    if (!node) {
      node = el("div", "question");
      node.setAttribute("data-question", id);
      var bubble = el("div", "bubble");
      node.appendChild(bubble);
      items["q:" + id] = node;
      log.appendChild(node);
    }
    node.firstChild.textContent = text;
    welcome.hidden = true;
    scrollDown();
    return node;
  }

  function questionError(id, text) {
    var node = id ? items["q:" + id] : null;
    var error = el("p", "error");
    error.setAttribute("role", "alert");
    error.textContent = text;
    if (node) node.appendChild(error); else log.appendChild(error);
    scrollDown();
  }

  function feedbackButtons(message) {
    var bar = el("div", "feedback");
    bar.setAttribute("role", "group");
    bar.setAttribute("aria-label", "Was this helpful?");
    [["up", "👍", "Helpful"], ["down", "👎", "Not helpful"]].forEach(function (choice) {
      var button = el("button", "vote");
      button.type = "button";
      button.textContent = choice[1];
      button.title = choice[2];
      button.setAttribute("aria-label", choice[2]);
      button.setAttribute("aria-pressed", votes[message.id] === choice[0] ? "true" : "false");
      button.addEventListener("click", function () {
        votes[message.id] = choice[0];
        save("botkit.votes", JSON.stringify(votes));
        Array.prototype.forEach.call(bar.querySelectorAll("button"), function (b) {
          b.setAttribute("aria-pressed", b === button ? "true" : "false");
        });
        send({ type: "feedback", message: message.id, value: choice[0] });
      });
      bar.appendChild(button);
    });
    return bar;
  }

  function note(noteData, message) {
    if (noteData.kind === "feedback") return message.final ? feedbackButtons(message) : null;
    var kinds = { sources: "sources", warning: "warning", error: "error" };
    var node = el("div", "note " + (kinds[noteData.kind] || "context"));
    if (noteData.kind === "warning" || noteData.kind === "error") node.setAttribute("role", "note");
    markdown(noteData.text, node);
    return node;
  }

  function showMessage(message) {
    var key = "m:" + message.id;
    var node = items[key];
    if (!node) {
      node = el("div", "answer");
      node.setAttribute("data-message", message.id);
      items[key] = node;
      var after = message.reply_to ? items["q:" + message.reply_to] : null;
      var anchor = after;
      while (anchor && anchor.nextSibling && anchor.nextSibling.classList
             && anchor.nextSibling.classList.contains("answer")) anchor = anchor.nextSibling;
      if (anchor && anchor.nextSibling) log.insertBefore(node, anchor.nextSibling); else log.appendChild(node);
    }
    var bubble = el("div", "bubble");
    message.notes.filter(function (n) { return n.placement === "above" && n.kind !== "feedback"; })
      .forEach(function (n) { bubble.appendChild(note(n, message)); });
    if (message.text) {
      var body = el("div", "text");
      markdown(message.text, body);
      bubble.appendChild(body);
    } else if (message.status && !message.final) {
      var status = el("p", "status");
      status.setAttribute("role", "status");
      status.textContent = message.status;
      bubble.appendChild(status);
    }
    message.notes.filter(function (n) { return n.placement !== "above" && n.kind !== "feedback"; })
      .forEach(function (n) { bubble.appendChild(note(n, message)); });
    // the 👍/👎 buttons stand for the feedback note: last, under everything else
    message.notes.filter(function (n) { return n.kind === "feedback"; }).forEach(function (n) {
      var shown = note(n, message);
      if (shown) bubble.appendChild(shown);
    });
    node.classList.toggle("streaming", !message.final);
    node.replaceChildren(bubble);
    welcome.hidden = true;
    scrollDown();
  }

  function show(item) {
    if (item.type === "question") showQuestion(item.id, item.text);
    else if (item.type === "message") showMessage(item);
  }

  // -- the connection ---------------------------------------------------------------------------------

  var socket = null;
  var open = false;
  var unanswered = {}; // question id -> text, until the bot took it (sent again after a reconnect)
  var retry = 500;

  function send(payload) {
    if (open) socket.send(JSON.stringify(payload));
  }

  function status(text) {
    connection.hidden = !text;
    connection.textContent = text || "";
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(scheme + "//" + window.location.host + settings.socket);
    socket.onopen = function () {
      open = true;
      retry = 500;
      status("");
      send({ type: "hello", browser: browser, conversation: conversation });
      Object.keys(unanswered).forEach(function (id) {
        send({ type: "ask", id: id, text: unanswered[id] });
      });
    };
    socket.onmessage = function (event) {
      var data = JSON.parse(event.data);
      if (data.type === "history") {
        if (data.conversation !== conversation) return;
        clearLog();
        data.items.forEach(show);
        Object.keys(unanswered).forEach(function (id) { showQuestion(id, unanswered[id]); });
      } else if (data.type === "accepted") {
        delete unanswered[data.id];
      } else if (data.type === "error") {
        if (data.id) delete unanswered[data.id];
        questionError(data.id, data.text);
      } else {
        show(data);
      }
    };
    socket.onclose = function () {
      open = false;
      status("Reconnecting…");
      window.setTimeout(connect, retry);
      retry = Math.min(retry * 2, 10000);
    };
  }

  function ask(text) {
    text = text.trim();
    if (!text) return;
    if (text.length > settings.maxQuestion) {
      questionError(null, "Questions can be at most " + settings.maxQuestion + " characters long.");
      return;
    }
    var id = randomId(12);
    unanswered[id] = text;
    showQuestion(id, text);
    send({ type: "ask", id: id, text: text });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    ask(box.value);
    box.value = "";
    fit();
    box.focus();
  });
  box.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit ? form.requestSubmit(sendButton) : sendButton.click();
    }
  });
  function fit() {
    box.style.height = "auto";
    box.style.height = Math.min(box.scrollHeight, 200) + "px";
    var left = settings.maxQuestion - box.value.length;
    limitNote.hidden = left > 200;
    limitNote.textContent = left + " characters left";
  }
  box.addEventListener("input", fit);

  newButton.addEventListener("click", function () {
    conversation = randomId(12);
    save("botkit.conversation", conversation);
    unanswered = {};
    clearLog();
    send({ type: "hello", browser: browser, conversation: conversation });
    box.focus();
  });

  connect();
  box.focus();
})();
