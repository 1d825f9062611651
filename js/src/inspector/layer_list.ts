/** The layer list: every layer with its type, output shape and parameters; weightless ones greyed. */
import { h } from "../dom";
import { paramsText, shapeText } from "../weight_format";
import type { LayerRow } from "./wire";

/** One row; a layer without weights is disabled (not focusable, clicks ignored). */
export function layerRow(row: LayerRow, selected: boolean, onSelect: () => void): HTMLElement {
  const empty = row.n_params === 0;
  const el = h("div", {
    class: "sw-bar",
    role: "button",
    tabindex: empty ? -1 : 0,
    "data-sw-layer": row.name,
    "aria-pressed": String(selected),
    "aria-disabled": empty ? "true" : undefined,
    title: empty ? `${row.name} (${row.type}) has no weights` : `${row.name} (${row.type})`,
  }, [
    h("span", { class: "sw-bar-label" }, row.name),
    h("span", { class: "sw-bar-value" }, row.type),
    h("span", { class: "sw-wi-meta" }, `out ${shapeText(row.output_shape)} · ${empty ? "no weights" : `${paramsText(row.n_params)} params`}`),
  ]);
  if (empty) return el;
  el.addEventListener("click", onSelect);
  el.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" || ev.key === " ") {
      ev.preventDefault();
      onSelect();
    }
  });
  return el;
}
