// The inspector's replay: sends a reply's request through the real OpenAI endpoint and shows
// each SSE frame as it arrived, the time to first token, and a histogram of the gaps between
// tokens. The frames are the bytes the server sent, split at their blank lines.
(() => {
  "use strict";

  const BINS = 12;
  const SVG = "http://www.w3.org/2000/svg";

  function frameText(frame) {
    // The content a frame adds: the delta's text of an OpenAI chunk; "" for anything else.
    const data = frame
      .split(/\r?\n/)
      .filter((line) => line.startsWith("data:"))
      .map((line) => line.slice(5).trimStart())
      .join("\n");
    if (!data || data === "[DONE]") return "";
    try {
      const chunk = JSON.parse(data);
      const choice = chunk.choices && chunk.choices[0];
      return (choice && choice.delta && choice.delta.content) || "";
    } catch {
      return "";
    }
  }

  async function record(url, body, onFrame) {
    // Every frame with its arrival time in ms since the request was sent.
    const started = performance.now();
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "text/event-stream" },
      body,
      credentials: "same-origin",
    });
    if (!response.ok) {
      throw new Error(`${response.status} ${response.statusText}: ${await response.text()}`);
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      const at = performance.now() - started;
      buffer += decoder.decode(value || new Uint8Array(), { stream: !done });
      const parts = buffer.split(/\r?\n\r?\n/);
      buffer = parts.pop();
      for (const frame of parts) if (frame.trim()) onFrame(frame, at);
      if (done) break;
    }
    if (buffer.trim()) onFrame(buffer, performance.now() - started);
  }

  function histogram(svg, gaps) {
    svg.replaceChildren();
    if (!gaps.length) return [0, 0];
    const low = Math.min(...gaps);
    const high = Math.max(...gaps);
    const width = (high - low) / BINS || 1;
    const counts = new Array(BINS).fill(0);
    for (const gap of gaps) counts[Math.min(BINS - 1, Math.floor((gap - low) / width))] += 1;
    const most = Math.max(...counts);
    counts.forEach((count, i) => {
      const bar = document.createElementNS(SVG, "rect");
      const height = (count / most) * 110;
      bar.setAttribute("x", String(i * (320 / BINS) + 2));
      bar.setAttribute("y", String(120 - height));
      bar.setAttribute("width", String(320 / BINS - 4));
      bar.setAttribute("height", String(height));
      bar.setAttribute("class", "bar");
      const title = document.createElementNS(SVG, "title");
      const from = low + i * width;
      title.textContent = `${from.toFixed(1)}–${(from + width).toFixed(1)} ms: ${count}`;
      bar.append(title);
      svg.append(bar);
    });
    return [low, high];
  }

  async function replay(button) {
    const section = button.closest(".replay");
    const result = section.querySelector(".replay-result");
    const summary = section.querySelector(".replay-summary");
    const rows = section.querySelector(".frames tbody");
    const buttons = section.querySelectorAll("[data-replay]");
    buttons.forEach((b) => (b.disabled = true));
    rows.replaceChildren();
    result.hidden = false;
    summary.textContent = `Replaying at ${button.dataset.replay}…`;
    section.removeAttribute("data-outcome");
    const tokenTimes = [];
    let text = "";
    let count = 0;
    try {
      await record(button.dataset.replay, section.dataset.body, (frame, at) => {
        count += 1;
        const piece = frameText(frame);
        if (piece) {
          tokenTimes.push(at);
          text += piece;
        }
        const row = rows.insertRow();
        row.insertCell().textContent = String(count);
        row.insertCell().textContent = at.toFixed(1);
        const cell = row.insertCell();
        const code = document.createElement("code");
        code.textContent = frame;
        cell.append(code);
      });
    } catch (error) {
      summary.textContent = `The replay failed: ${error.message}`;
      section.dataset.outcome = "failed";
      buttons.forEach((b) => (b.disabled = false));
      return;
    }
    const gaps = tokenTimes.slice(1).map((t, i) => t - tokenTimes[i]);
    const [low, high] = histogram(section.querySelector(".histogram"), gaps);
    section.querySelector(".axis-min").textContent = `${low.toFixed(1)} ms`;
    section.querySelector(".axis-max").textContent = `${high.toFixed(1)} ms`;
    const first = tokenTimes.length ? `${tokenTimes[0].toFixed(1)} ms` : "no token";
    const same = section.dataset.prefix + text === section.dataset.stored;
    section.dataset.outcome = same ? "identical" : "different";
    summary.textContent =
      `${count} frames; first token after ${first}; ${tokenTimes.length} tokens. ` +
      (same
        ? "The replayed text is identical to the stored reply."
        : "The replayed text differs from the stored reply (without a seed it usually does).");
    buttons.forEach((b) => (b.disabled = false));
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-replay]");
    if (button) replay(button);
  });
})();
