// The Arena tab and the embedding map: what htmx cannot express. An arena drops its Stop
// once nothing in it runs, and a text arena then asks for its comparison; a point of the map
// (or its sentence in the list under it) shows that sentence's neighbours.
(() => {
  "use strict";

  const on = (event, handler) => document.body.addEventListener(event, handler);

  // -- arena: every column has ended (each one's `done` swapped in) -> load the comparison --
  function arenaFinished() {
    for (const arena of document.querySelectorAll(".arena")) {
      if (arena.querySelector('[aria-busy="true"]')) continue;
      const stop = arena.querySelector(".arena-head .stop");
      if (stop) stop.remove();
      const compare = arena.querySelector('.arena-compare[hx-trigger="arena-finished"]');
      if (compare) {
        compare.setAttribute("hx-trigger", "done");
        htmx.trigger(compare, "arena-finished");
      }
    }
  }
  on("htmx:afterSettle", arenaFinished);
  on("htmx:sseClose", arenaFinished);

  // -- embedding map: a click (or Enter/Space) on a point shows its neighbours -------------
  function showNeighbours(picked) {
    const card = picked.closest(".map-card");
    const index = picked.dataset.point;
    for (const each of card.querySelectorAll(".map-point, .map-pick")) {
      const chosen = each.dataset.point === index;
      each.classList.toggle("chosen", chosen);
      each.setAttribute("aria-pressed", String(chosen));
    }
    for (const list of card.querySelectorAll(".neighbour-list")) {
      list.hidden = list.dataset.for !== index;
    }
    const near = new Set(
      [...card.querySelectorAll(`.neighbour-list[data-for="${index}"] [data-neighbour]`)].map(
        (li) => li.dataset.neighbour,
      ),
    );
    for (const each of card.querySelectorAll(".map-point")) {
      each.classList.toggle("near", near.has(each.dataset.point));
    }
    const hint = card.querySelector(".map-hint");
    if (hint) hint.hidden = true;
  }

  document.addEventListener("click", (event) => {
    const picked = event.target.closest(".map-point, .map-pick");
    if (picked) showNeighbours(picked);
  });
  document.addEventListener("keydown", (event) => {
    const point = event.target.closest && event.target.closest(".map-point");
    if (point && (event.key === "Enter" || event.key === " ")) {
      event.preventDefault();
      showNeighbours(point);
    }
  });
})();
