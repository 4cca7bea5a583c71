// The Speech tab's audio: a recording from the microphone (MediaRecorder) or a dropped file
// becomes the form's file, which htmx then posts as multipart like a chosen one.
(() => {
  "use strict";

  const input = document.getElementById("speech-file");
  const drop = document.getElementById("speech-drop");
  const button = document.getElementById("speech-record");
  const state = document.getElementById("speech-record-state");
  if (!input || !drop || !button) return;

  function useFile(file) {
    const files = new DataTransfer();
    files.items.add(file);
    input.files = files.files;
    state.textContent = `${file.name}, ${Math.round(file.size / 1024)} KB`;
  }

  // -- drop a file anywhere on the audio field ----------------------------------------------
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("dragging");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("dragging"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("dragging");
    const file = event.dataTransfer && event.dataTransfer.files[0];
    if (file) useFile(file);
  });
  input.addEventListener("change", () => {
    if (input.files[0]) state.textContent = "";
  });

  // -- record: press to start, press again to stop; the recording becomes the file ----------
  let recorder = null;
  let started = 0;
  let timer = null;

  async function start() {
    if (!navigator.mediaDevices || !window.MediaRecorder) {
      state.textContent = "This browser cannot record here (it needs localhost or HTTPS).";
      return;
    }
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (error) {
      state.textContent = `No microphone: ${error.message || error.name}`;
      return;
    }
    const chunks = [];
    recorder = new MediaRecorder(stream);
    recorder.addEventListener("dataavailable", (event) => {
      if (event.data.size) chunks.push(event.data);
    });
    recorder.addEventListener("stop", () => {
      stream.getTracks().forEach((track) => track.stop());
      clearInterval(timer);
      const type = recorder.mimeType || "audio/webm";
      const extension = type.includes("ogg") ? "ogg" : type.includes("mp4") ? "m4a" : "webm";
      useFile(new File(chunks, `recording.${extension}`, { type }));
      recorder = null;
      button.textContent = "Record";
      button.setAttribute("aria-pressed", "false");
    });
    recorder.start(250);
    started = performance.now();
    button.textContent = "Stop recording";
    button.setAttribute("aria-pressed", "true");
    timer = setInterval(() => {
      state.textContent = `Recording… ${((performance.now() - started) / 1000).toFixed(1)} s`;
    }, 200);
  }

  button.addEventListener("click", () => {
    if (recorder) recorder.stop();
    else start();
  });
})();
