// Images attached to a chat message: the file button, paste and drop all add to the Send
// form's one file input, each shown as a removable thumbnail until the message is sent.
// The server checks them (the model reads images, each is an image within its limits).
(() => {
  "use strict";

  const input = document.getElementById("chat-images");
  if (!input) return;
  const list = document.getElementById("chat-attachments");
  const composer = input.closest(".composer");
  let files = [];

  function thumbnail(file, index) {
    const item = document.createElement("figure");
    item.className = "attachment";
    const image = document.createElement("img");
    image.alt = file.name;
    const reader = new FileReader();
    reader.addEventListener("load", () => { image.src = reader.result; });
    reader.readAsDataURL(file);
    const caption = document.createElement("figcaption");
    caption.textContent = file.name;
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "small ghost remove";
    remove.textContent = "×";
    remove.setAttribute("aria-label", "Remove " + file.name);
    remove.addEventListener("click", () => {
      files.splice(index, 1);
      show();
    });
    item.append(image, caption, remove);
    return item;
  }

  // The input holds exactly the files shown: a new choice adds to them, not replaces them.
  function show() {
    const transfer = new DataTransfer();
    for (const file of files) transfer.items.add(file);
    input.files = transfer.files;
    list.replaceChildren(...files.map(thumbnail));
    list.hidden = files.length === 0;
  }

  function add(found) {
    files = files.concat([...found]);
    show();
  }

  input.addEventListener("change", () => add(input.files));

  document.getElementById("chat-message").addEventListener("paste", (event) => {
    const pasted = [...(event.clipboardData ? event.clipboardData.files : [])];
    if (!pasted.length) return;
    event.preventDefault(); // an image's file name would otherwise be pasted as text
    add(pasted);
  });

  composer.addEventListener("dragover", (event) => {
    if (![...event.dataTransfer.types].includes("Files")) return;
    event.preventDefault();
    composer.classList.add("dropping");
  });
  composer.addEventListener("dragleave", () => composer.classList.remove("dropping"));
  composer.addEventListener("drop", (event) => {
    composer.classList.remove("dropping");
    if (!event.dataTransfer.files.length) return;
    event.preventDefault();
    add(event.dataTransfer.files);
  });

  // Sent: the images now show in the conversation's turn. Refused: they stay, to remove.
  document.body.addEventListener("htmx:afterRequest", (event) => {
    if (event.detail.elt.id === "chat-form" && event.detail.successful) {
      files = [];
      show();
    }
  });
})();
