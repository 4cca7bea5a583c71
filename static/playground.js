// The playground's few behaviours that HTML and htmx cannot express: tabs, keys, copy,
// auto-scroll, the Send/Stop state, the code dialog and words for network failures.
(() => {
  "use strict";

  const $ = (selector, root = document) => root.querySelector(selector);
  const on = (event, handler) => document.body.addEventListener(event, handler);

  // -- tabs (the WAI-ARIA tabs pattern; the URL's #fragment names the open tab) ----------
  const tabs = [...document.querySelectorAll('[role="tab"]')];

  function selectTab(tab, focus) {
    for (const each of tabs) {
      const selected = each === tab;
      each.setAttribute("aria-selected", String(selected));
      each.tabIndex = selected ? 0 : -1;
      document.getElementById(each.getAttribute("aria-controls")).hidden = !selected;
    }
    if (focus) tab.focus();
    // On a narrow screen the tab list scrolls sideways: keep the open tab in sight.
    tab.scrollIntoView({ block: "nearest", inline: "nearest" });
    history.replaceState(null, "", "#" + tab.id.replace(/^tab-/, ""));
  }

  tabs.forEach((tab, index) => {
    tab.addEventListener("click", () => selectTab(tab, false));
    tab.addEventListener("keydown", (event) => {
      const moves = { ArrowRight: 1, ArrowLeft: -1, Home: -index, End: tabs.length - 1 - index };
      if (!(event.key in moves)) return;
      event.preventDefault();
      selectTab(tabs[(index + moves[event.key] + tabs.length) % tabs.length], true);
    });
  });
  const fromUrl = document.getElementById("tab-" + location.hash.slice(1));
  if (fromUrl) selectTab(fromUrl, false);

  // -- keys: Enter sends, Shift+Enter adds a line, Esc stops ------------------------------
  document.addEventListener("keydown", (event) => {
    const box = event.target;
    if (!(box instanceof HTMLTextAreaElement)) return;
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && box.hasAttribute("data-enter-submits")) {
      event.preventDefault();
      const submit = $('[type="submit"]', box.form);
      if (submit && !submit.disabled) box.form.requestSubmit(submit);
    } else if (event.key === "Escape" && box.dataset.escapeClicks) {
      const button = document.getElementById(box.dataset.escapeClicks);
      if (button && !button.disabled) button.click();
    }
  });

  // -- copy: the Clipboard API where the page is a secure context, else execCommand --------
  async function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      try {
        await navigator.clipboard.writeText(text);
        return true;
      } catch {
        // denied or unfocused: fall back below
      }
    }
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.cssText = "position:fixed;top:0;left:0;opacity:0;pointer-events:none";
    document.body.append(area);
    area.select();
    let copied = false;
    try {
      copied = document.execCommand("copy");
    } catch {
      copied = false;
    }
    area.remove();
    return copied;
  }

  document.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-copy]");
    if (!button) return;
    const source = $(button.dataset.copy, button.closest("[data-copy-scope]"));
    if (!source) return;
    const text = source instanceof HTMLInputElement ? source.value : source.textContent;
    const copied = await copyText(text);
    button.focus();
    button.dataset.label ??= button.textContent;
    button.textContent = copied ? "Copied" : "Copy failed";
    clearTimeout(button.copyTimer);
    button.copyTimer = setTimeout(() => (button.textContent = button.dataset.label), 1500);
  });

  // -- chat: Send and Stop follow the streaming reply; the view follows it while at the bottom
  const conversation = $("#conversation");
  const send = $("#chat-send");
  const stop = $("#chat-stop");
  let follow = true;
  let autoScrollTop = -1;

  function syncChat() {
    const streaming = Boolean($('[aria-busy="true"]', conversation));
    send.disabled = streaming;
    stop.disabled = !streaming;
  }

  conversation.addEventListener("scroll", () => {
    if (Math.abs(conversation.scrollTop - autoScrollTop) < 2) return; // our own scrolling
    follow = conversation.scrollHeight - conversation.scrollTop - conversation.clientHeight < 40;
  });

  on("htmx:beforeRequest", (event) => {
    if (event.detail.elt.id === "chat-form") follow = true;
  });

  // At most one scroll per frame: reading scrollHeight after every token would lay the
  // whole conversation out again each time, and long replies would stutter.
  let scrollQueued = false;
  function scrollToEnd() {
    scrollQueued = false;
    conversation.scrollTop = conversation.scrollHeight;
    autoScrollTop = conversation.scrollTop;
  }

  on("htmx:afterSwap", (event) => {
    if (!conversation.contains(event.target)) return;
    syncChat();
    if (follow && !scrollQueued) {
      scrollQueued = true;
      requestAnimationFrame(scrollToEnd);
    }
  });

  on("htmx:afterRequest", (event) => {
    if (event.detail.elt.id === "chat-form" && event.detail.successful) {
      $("#chat-message").value = "";
    }
  });

  // -- errors: requests clear their panel's old error; lost connections are said in words --
  function errorSlot(element) {
    const panel = element.closest('[role="tabpanel"]');
    return panel && $(".error-slot", panel);
  }

  function say(slot, words) {
    const message = document.createElement("p");
    message.className = "error-msg";
    message.setAttribute("role", "alert");
    message.textContent = words;
    slot.replaceChildren(message);
  }

  on("htmx:beforeRequest", (event) => {
    const elt = event.detail.elt;
    if (!elt.matches("form, button")) return;
    const slot = errorSlot(elt);
    if (slot) slot.replaceChildren();
  });

  on("htmx:sendError", (event) => {
    const elt = event.detail.elt;
    if (elt.id === "status") {
      elt.classList.add("offline");
      $(".server-text", elt).textContent = "Server unreachable, retrying…";
      elt.setAttribute("hx-vals", '{"since": ""}'); // redraw once it answers again
      return;
    }
    const slot = errorSlot(elt);
    if (slot) say(slot, "Could not reach the server. Is localoip still running?");
  });

  // A dropped stream reconnects by itself (EventSource sends Last-Event-ID, and the server
  // resumes after it). One the server refused keeps what arrived and says so.
  on("htmx:sseError", (event) => {
    const source = event.detail.source;
    const element = event.target.closest("[sse-connect]");
    if (!element || (source && source.readyState !== EventSource.CLOSED)) return;
    element.removeAttribute("sse-connect");
    if (source) source.close();
    element.removeAttribute("aria-busy");
    element.classList.add("failed");
    const note = document.createElement("p");
    note.className = "error-msg";
    note.setAttribute("role", "alert");
    note.textContent = "The connection to the server was lost; what arrived before is kept above.";
    element.append(note);
    syncChat();
  });

  // -- conversations: the URL names the open one; the sidebar is a drawer on narrow screens --
  on("conversation-opened", (event) => {
    const id = event.detail.id;
    history.replaceState(null, "", "/?c=" + encodeURIComponent(id) + location.hash);
  });

  function markOpen() {
    const open = new URLSearchParams(location.search).get("c");
    for (const link of document.querySelectorAll("#conversation-list a")) {
      if (link.dataset.conversation === open) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
  }
  on("htmx:afterSettle", (event) => {
    if (event.target.id === "conversation-list") markOpen();
  });

  const sidebar = $("#sidebar");
  function drawer(open) {
    sidebar.classList.toggle("open", open);
    for (const toggle of document.querySelectorAll(".drawer-toggle")) {
      toggle.setAttribute("aria-expanded", String(open));
    }
  }
  document.addEventListener("click", (event) => {
    if (event.target.closest(".drawer-toggle")) drawer(!sidebar.classList.contains("open"));
    else if (sidebar.classList.contains("open") && !sidebar.contains(event.target)) drawer(false);
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && sidebar.classList.contains("open")) drawer(false);
  });

  // An import reads the chosen file in the page and posts its text as a form field.
  const importFile = $("#import-file");
  importFile.addEventListener("change", async () => {
    const file = importFile.files[0];
    if (!file) return;
    const form = importFile.form;
    form.elements.data.value = await file.text();
    form.elements.filename.value = file.name;
    importFile.value = "";
    htmx.trigger(form, "submit");
  });

  // Left and right arrows move between the versions of the turn that has the focus.
  conversation.addEventListener("keydown", (event) => {
    if (!["ArrowLeft", "ArrowRight"].includes(event.key)) return;
    if (event.target.closest("textarea, input")) return;
    const turn = event.target.closest(".turn");
    const button = turn && $(event.key === "ArrowLeft" ? ".sib-prev" : ".sib-next", turn);
    if (button && !button.disabled) {
      event.preventDefault();
      button.click();
    }
  });

  // -- the code dialog opens when its content arrives ------------------------------------
  const dialog = $("#code-dialog");
  on("htmx:afterSwap", (event) => {
    if (event.target.id === "code-body" && !dialog.open) dialog.showModal();
  });
  dialog.addEventListener("click", (event) => {
    if (event.target === dialog) dialog.close(); // a click on the backdrop
  });

  syncChat();
})();
