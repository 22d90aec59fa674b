// Civitas workspace: progressive enhancement of the chat. Every form works
// without this script; with it, answers stream in as they are written.
(function () {
  "use strict";

  var strings = document.getElementById("chat-strings");
  var say = function (key) { return strings ? strings.dataset[key] || "" : ""; };
  var statusRegion = document.getElementById("chat-status");
  var errorRegion = document.getElementById("chat-error");

  function announce(text) {
    if (!statusRegion) return;
    statusRegion.textContent = "";
    // A fresh text node so that screen readers read it again.
    window.setTimeout(function () { statusRegion.textContent = text; }, 50);
  }

  function showError(text) {
    if (!errorRegion) return;
    errorRegion.textContent = "";
    var alert = document.createElement("div");
    alert.className = "usa-alert usa-alert--error usa-alert--slim";
    var body = document.createElement("div");
    body.className = "usa-alert__body";
    var p = document.createElement("p");
    p.className = "usa-alert__text";
    p.textContent = text;
    body.appendChild(p);
    alert.appendChild(body);
    errorRegion.appendChild(alert);
  }

  function threadList() {
    var thread = document.getElementById("thread");
    if (!thread) return null;
    var list = thread.querySelector("ol.civitas-thread");
    if (!list) {
      list = document.createElement("ol");
      list.className = "civitas-thread";
      thread.appendChild(list);
    }
    return list;
  }

  function bubble(role, text) {
    var item = document.createElement("li");
    item.className = "civitas-message civitas-message--" + role;
    var author = document.createElement("h2");
    author.className = "civitas-message__author";
    author.textContent = role === "user" ? say("you") : say("assistant");
    var body = document.createElement("div");
    body.className = "civitas-message__body";
    var p = document.createElement("p");
    p.className = "civitas-plain";
    p.textContent = text;
    body.appendChild(p);
    item.appendChild(author);
    item.appendChild(body);
    return { item: item, text: p, body: body };
  }

  // Reads a server-sent event stream of chat completion chunks, calling
  // onText with each piece of content. Resolves when the stream ends.
  function readStream(response, onText) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    function pump() {
      return reader.read().then(function (result) {
        if (result.done) return;
        buffer += decoder.decode(result.value, { stream: true });
        var events = buffer.split("\n\n");
        buffer = events.pop();
        events.forEach(function (event) {
          event.split("\n").forEach(function (line) {
            if (line.indexOf("data:") !== 0) return;
            var data = line.slice(5).trim();
            if (!data || data === "[DONE]") return;
            try {
              var chunk = JSON.parse(data);
              if (chunk.error) { showError(chunk.error.message || say("failed")); return; }
              var choice = chunk.choices && chunk.choices[0];
              if (choice && choice.delta && choice.delta.content) onText(choice.delta.content);
            } catch (ignored) { /* a keep-alive or a partial line */ }
          });
        });
        return pump();
      });
    }
    return pump();
  }

  function errorOf(response) {
    return response.json().then(function (body) {
      return (body && body.error && body.error.message) || say("failed");
    }, function () { return say("failed"); });
  }

  function refreshThread(conversationId) {
    var thread = document.getElementById("thread");
    return fetch("/c/" + conversationId + "/thread", { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html !== null && thread) {
          thread.innerHTML = html;
          enhance(thread);
        }
      });
  }

  function setBusy(form, busy) {
    var send = form.querySelector("[data-send]");
    var stop = form.querySelector("[data-stop]") || document.querySelector("#reply-form [data-stop], #new-form [data-stop]");
    if (send) send.disabled = busy;
    if (stop) {
      if (busy) { stop.hidden = false; }
      else {
        var hadFocus = document.activeElement === stop;
        stop.hidden = true;
        var content = document.getElementById("content");
        if (hadFocus && content) content.focus();
      }
    }
    return stop;
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function removePreview() {
    var old = document.getElementById("preview");
    if (old) old.remove();
  }

  // The pre-send preview: what was found in the message (highlighted), the
  // level, and what will be done; the person sends, changes the level, or
  // goes back to the message. Built from text nodes only.
  function showPreview(form, preview, proceed, again) {
    removePreview();
    var tone = !preview.allowed ? "error" : (preview.action === "pseudonymize" || preview.level.raised ? "warning" : "info");
    var panel = element("section", "usa-alert usa-alert--" + tone + " civitas-preview");
    panel.id = "preview";
    panel.setAttribute("aria-labelledby", "preview-heading");
    panel.tabIndex = -1;
    var body = element("div", "usa-alert__body");
    var heading = element("h2", "usa-alert__heading", say("previewHeading"));
    heading.id = "preview-heading";
    body.appendChild(heading);
    body.appendChild(element("p", "usa-alert__text", preview.message));
    if (preview.detected.length) {
      body.appendChild(element("h3", "civitas-preview__subheading", say("previewDetected")));
      var found = element("ul", "civitas-preview__found");
      preview.detected.forEach(function (item) {
        found.appendChild(element("li", "", item.label + " × " + item.count));
      });
      body.appendChild(found);
      var quote = element("blockquote", "civitas-preview__text");
      preview.segments.forEach(function (segment) {
        if (segment.entity) {
          var mark = element("mark", "", segment.text);
          mark.title = segment.label;
          quote.appendChild(mark);
        } else {
          quote.appendChild(document.createTextNode(segment.text));
        }
      });
      body.appendChild(quote);
    } else {
      body.appendChild(element("p", "", say("previewNothing")));
    }
    var levelField = form.querySelector("select[name=classification]") || form.querySelector("input[name=classification]");
    if (levelField && preview.levels.length > 1) {
      var label = element("label", "usa-label", say("previewLevel"));
      label.setAttribute("for", "preview-level");
      var select = element("select", "usa-select");
      select.id = "preview-level";
      preview.levels.forEach(function (level) {
        var option = element("option", "", level.label);
        option.value = level.id;
        if (level.id === preview.level.id) option.selected = true;
        select.appendChild(option);
      });
      select.addEventListener("change", function () {
        levelField.value = select.value;
        again();
      });
      body.appendChild(label);
      body.appendChild(select);
    }
    var actions = element("div", "civitas-compose__actions");
    if (preview.allowed) {
      var send = element("button", "usa-button", say("previewProceed"));
      send.type = "button";
      send.addEventListener("click", function () { removePreview(); proceed(); });
      actions.appendChild(send);
    }
    var cancel = element("button", "usa-button usa-button--outline", say("previewCancel"));
    cancel.type = "button";
    cancel.addEventListener("click", function () {
      removePreview();
      var box = form.querySelector("textarea");
      if (box) box.focus();
    });
    actions.appendChild(cancel);
    body.appendChild(actions);
    panel.appendChild(body);
    form.parentNode.insertBefore(panel, form);
    panel.focus();
  }

  // Asks what sending would do; goes straight on when there is nothing to
  // say (no finding, no change of level, allowed). If the preview cannot
  // be had, the message goes: the server decides at sending anyway.
  function previewFirst(form, kind, proceed) {
    if (kind !== "new" && kind !== "reply") { proceed(); return; }
    var data = new FormData(form);
    var body = new URLSearchParams();
    body.append("csrf_token", data.get("csrf_token"));
    body.append("content", data.get("content") || "");
    body.append("classification", data.get("classification") || "");
    if (kind === "new") body.append("model", data.get("model") || "");
    else body.append("conversation", form.dataset.conversation || "");
    var again = function () { previewFirst(form, kind, proceed); };
    // The message is on its way: no second send while the preview is asked.
    var send = form.querySelector("[data-send]");
    if (send) send.disabled = true;
    var go = function (then) {
      if (send) send.disabled = false;
      then();
    };
    fetch("/preview", {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "x-civitas-stream": "1" }
    }).then(function (response) {
      return response.ok ? response.json() : null;
    }).then(function (preview) {
      if (!preview) { go(proceed); return; }
      var quiet = preview.allowed && !preview.detected.length && !preview.level.raised;
      if (quiet && !document.getElementById("preview")) { go(proceed); return; }
      go(function () { showPreview(form, preview, proceed, again); });
    }, function () { go(proceed); });
  }

  function streamForm(form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var kind = form.dataset.stream;
      var question = (new FormData(form).get("content") || "").toString();
      if ((kind === "new" || kind === "reply" || kind === "edit") && !question.trim()) {
        form.querySelector("textarea").focus();
        return;
      }
      if (!threadList()) { form.submit(); return; }
      previewFirst(form, kind, function () { sendForm(form, kind); });
    });
  }

  function sendForm(form, kind) {
    (function () {
      var data = new FormData(form);
      var question = (data.get("content") || "").toString();
      var list = threadList();
      if (errorRegion) errorRegion.textContent = "";
      var messages = list.querySelectorAll(".civitas-message");
      var last = messages[messages.length - 1];
      if (kind === "regenerate" && last && last.classList.contains("civitas-message--assistant")) {
        last.remove();
      }
      if (kind === "edit") {
        for (var i = messages.length - 1; i >= 0; i--) {
          var gone = messages[i];
          gone.remove();
          if (gone.classList.contains("civitas-message--user")) break;
        }
      }
      if (kind !== "regenerate") list.appendChild(bubble("user", question).item);
      var answer = bubble("assistant", "");
      answer.body.setAttribute("aria-live", "polite");
      answer.body.setAttribute("aria-busy", "true");
      list.appendChild(answer.item);
      var reply = document.getElementById("reply-form") || document.getElementById("new-form");
      if (reply && kind !== "edit" && kind !== "regenerate") {
        var box = reply.querySelector("textarea");
        if (box) box.value = "";
      }
      var controls = reply || form;
      var stop = setBusy(controls, true);
      announce(say("writing"));
      var conversationId = form.dataset.conversation || "";
      var stopped = false;
      var onStop = function () {
        stopped = true;
        if (!conversationId) return;
        var body = new URLSearchParams();
        body.append("csrf_token", data.get("csrf_token"));
        fetch("/c/" + conversationId + "/stop", {
          method: "POST", body: body, credentials: "same-origin",
          headers: { "x-civitas-stream": "1" }
        });
      };
      if (stop) stop.addEventListener("click", onStop, { once: true });
      // URL-encoded, as the form itself would send it.
      fetch(form.action, {
        method: "POST", body: new URLSearchParams(data), credentials: "same-origin",
        headers: { "x-civitas-stream": "1" }
      }).then(function (response) {
        conversationId = response.headers.get("x-civitas-conversation-id") || conversationId;
        if (!response.ok) {
          return errorOf(response).then(function (message) {
            answer.item.remove();
            showError(message);
            throw null;
          });
        }
        var type = response.headers.get("content-type") || "";
        if (type.indexOf("text/event-stream") !== 0) return null;
        return readStream(response, function (text) { answer.text.textContent += text; });
      }).then(function () {
        answer.body.setAttribute("aria-busy", "false");
        setBusy(controls, false);
        announce(stopped ? say("stopped") : say("done"));
        if (kind === "new" && conversationId) {
          window.location.assign("/c/" + conversationId + "#latest");
          return null;
        }
        return refreshThread(conversationId);
      }).catch(function (error) {
        answer.body.setAttribute("aria-busy", "false");
        if (error !== null) showError(say("failed"));
      }).then(function () {
        setBusy(controls, false);
        if (stop) stop.removeEventListener("click", onStop);
      });
    })();
  }

  // The temporary chat: the conversation lives in this page only.
  function temporaryForm(form) {
    var history = [];
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var box = form.querySelector("textarea");
      var question = box.value;
      if (!question.trim()) { box.focus(); return; }
      var list = threadList();
      if (errorRegion) errorRegion.textContent = "";
      list.appendChild(bubble("user", question).item);
      var answer = bubble("assistant", "");
      answer.body.setAttribute("aria-live", "polite");
      answer.body.setAttribute("aria-busy", "true");
      list.appendChild(answer.item);
      box.value = "";
      history.push({ role: "user", content: question });
      var controller = new AbortController();
      var stop = setBusy(form, true);
      var stopped = false;
      var onStop = function () { stopped = true; controller.abort(); };
      if (stop) stop.addEventListener("click", onStop, { once: true });
      announce(say("writing"));
      var text = "";
      var headers = { "content-type": "application/json", "x-csrf-token": form.dataset.csrf };
      fetch(form.action, {
        method: "POST", credentials: "same-origin", signal: controller.signal, headers: headers,
        body: JSON.stringify({ model: form.querySelector("select").value, messages: history })
      }).then(function (response) {
        if (!response.ok) {
          return errorOf(response).then(function (message) {
            answer.item.remove(); history.pop(); showError(message); throw null;
          });
        }
        return readStream(response, function (piece) { text += piece; answer.text.textContent = text; });
      }).catch(function (error) {
        if (error !== null && !stopped) showError(say("failed"));
      }).then(function () {
        answer.body.setAttribute("aria-busy", "false");
        if (text) {
          history.push({ role: "assistant", content: text });
          return fetch("/temporary/render", {
            method: "POST", credentials: "same-origin", headers: headers,
            body: JSON.stringify({ content: text })
          }).then(function (response) { return response.ok ? response.text() : null; })
            .then(function (html) { if (html !== null) answer.body.innerHTML = html; });
        }
      }).then(function () {
        announce(stopped ? say("stopped") : say("done"));
        setBusy(form, false);
        if (stop) stop.removeEventListener("click", onStop);
      });
    });
  }

  function enhance(root) {
    root.querySelectorAll("[data-copy]").forEach(function (button) {
      if (!navigator.clipboard) return;
      button.hidden = false;
      button.addEventListener("click", function () {
        navigator.clipboard.writeText(button.dataset.copy).then(function () { announce(say("copied")); });
      });
    });
    root.querySelectorAll("form[data-stream]").forEach(streamForm);
    root.querySelectorAll("button[data-source]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () { openSource(button.closest("li"), button); });
    });
    // A citation opens its source's passage in the side panel.
    root.querySelectorAll("a.civitas-cite").forEach(function (link) {
      link.addEventListener("click", function (event) {
        var target = document.getElementById(link.getAttribute("href").slice(1));
        if (!target) return;
        event.preventDefault();
        openSource(target, link);
      });
    });
  }

  // The side panel showing one source: its title (document, section,
  // page) and passage. Focus moves to it and back to the citation when it
  // closes (its button or Escape).
  var sourcePanel = null;
  var sourceOpener = null;

  function closeSource() {
    if (!sourcePanel || sourcePanel.hidden) return;
    sourcePanel.hidden = true;
    if (sourceOpener) sourceOpener.focus();
    sourceOpener = null;
  }

  function openSource(item, opener) {
    if (!sourcePanel) {
      sourcePanel = document.createElement("aside");
      sourcePanel.id = "source-panel";
      sourcePanel.className = "civitas-source-panel";
      sourcePanel.setAttribute("aria-labelledby", "source-panel-title");
      sourcePanel.tabIndex = -1;
      var head = element("div", "civitas-source-panel__head", "");
      var label = element("p", "civitas-source-panel__label", say("sourceLabel"));
      var title = element("h2", "civitas-source-panel__title", "");
      title.id = "source-panel-title";
      var close = element("button", "usa-button usa-button--outline civitas-source-panel__close", say("sourceClose"));
      close.type = "button";
      close.addEventListener("click", closeSource);
      head.appendChild(label);
      head.appendChild(title);
      sourcePanel.appendChild(head);
      sourcePanel.appendChild(element("blockquote", "civitas-passage civitas-source-panel__passage", ""));
      sourcePanel.appendChild(close);
      sourcePanel.addEventListener("keydown", function (event) {
        if (event.key === "Escape") closeSource();
      });
      document.body.appendChild(sourcePanel);
    }
    var summary = item.querySelector("summary");
    var passage = item.querySelector("blockquote");
    sourcePanel.querySelector("h2").textContent = summary ? summary.textContent : "";
    sourcePanel.querySelector("blockquote").textContent = passage ? passage.textContent : "";
    sourceOpener = opener;
    sourcePanel.hidden = false;
    sourcePanel.focus();
  }

  // A collection's documents refresh themselves while some are queued or
  // being processed; each change of status is announced.
  function refreshDocuments(region) {
    var status = document.getElementById("documents-status");
    var statuses = function (root) {
      var seen = {};
      root.querySelectorAll("tbody tr").forEach(function (row) {
        var name = row.querySelector("th");
        var cell = row.querySelector("td");
        if (name && cell) seen[name.textContent] = cell.textContent.trim();
      });
      return seen;
    };
    var poll = function () {
      window.setTimeout(function () {
        fetch(region.dataset.url, { credentials: "same-origin" }).then(function (response) {
          return response.ok ? response.text() : null;
        }).then(function (html) {
          if (html === null) return;
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("documents");
          if (!fresh) return;
          var before = statuses(region);
          region.innerHTML = fresh.innerHTML;
          region.dataset.refresh = fresh.dataset.refresh;
          var after = statuses(region);
          var changed = Object.keys(after).filter(function (name) { return before[name] !== after[name]; })
            .map(function (name) { return name + ": " + after[name]; });
          if (status && changed.length) status.textContent = changed.join(". ");
          if (region.dataset.refresh === "true") poll();
        }, function () { poll(); });
      }, 2000);
    };
    poll();
  }

  if (window.fetch && window.TextDecoder && window.FormData) {
    document.querySelectorAll("form[data-temporary]").forEach(temporaryForm);
    enhance(document);
    var documents = document.getElementById("documents");
    if (documents && documents.dataset.refresh === "true" && window.DOMParser) refreshDocuments(documents);
  }
})();
