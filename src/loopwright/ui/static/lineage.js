/* The lineage graph: hovering or focusing a record highlights its links (the edges whose
   data-src or data-dst is the record's data-node) and dims the others. */
(function () {
  "use strict";

  function wire(svg) {
    var edges = Array.prototype.slice.call(svg.querySelectorAll(".edge"));
    function show(id) {
      svg.classList.add("focused");
      edges.forEach(function (edge) {
        var on = edge.getAttribute("data-src") === id || edge.getAttribute("data-dst") === id;
        edge.classList.toggle("hl", on);
      });
    }
    function clear() {
      svg.classList.remove("focused");
      edges.forEach(function (edge) { edge.classList.remove("hl"); });
    }
    svg.querySelectorAll(".node").forEach(function (node) {
      var id = node.getAttribute("data-node");
      node.addEventListener("mouseenter", function () { show(id); });
      node.addEventListener("mouseleave", clear);
      node.addEventListener("focusin", function () { show(id); });
      node.addEventListener("focusout", clear);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".lineage-graph svg").forEach(wire);
  });
})();
