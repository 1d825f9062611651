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

/** Arrow keys move the focus between the selectable rows of `list` (Home / End jump to the ends). */
export function arrowKeys(list: HTMLElement): void {
  list.addEventListener("keydown", (ev) => {
    const rows = Array.from(list.querySelectorAll<HTMLElement>('[data-sw-layer]:not([aria-disabled="true"])'));
    const at = rows.indexOf(ev.target as HTMLElement);
    const next = { ArrowDown: at + 1, ArrowUp: at - 1, Home: 0, End: rows.length - 1 }[ev.key];
    if (next === undefined || at < 0 || !rows.length) return;
    ev.preventDefault();
    rows[Math.max(0, Math.min(rows.length - 1, next))].focus();
  });
}

/** Replaces the rows of `list`, keeping the keyboard focus on the same layer. */
export function replaceRows(list: HTMLElement, rows: HTMLElement[]): void {
  const active = (list.getRootNode() as Document | ShadowRoot).activeElement;
  const focused = active && list.contains(active) ? active.getAttribute("data-sw-layer") : null;
  list.replaceChildren(...rows);
  if (focused !== null) rows.find((r) => r.getAttribute("data-sw-layer") === focused)?.focus();
}
