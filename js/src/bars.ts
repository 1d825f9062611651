/** Horizontal bar lists: the clickable output panel and read-only value lists. */
import { h } from "./dom";
import { formatValue } from "./format";
import { barSpan, searchLabels, topK } from "./ranking";

export interface BarItem {
  /** Flat output index (clickable lists) or feature index. */
  key: number;
  label: string;
  value: number;
  /** CSS colour of the fill (defaults to the theme's). */
  color?: string;
}

/** A list of labelled bars on a shared zero-based track. */
export class BarList {
  readonly el = h("div", { class: "sw-list" });

  /** With `onPick`, rows are buttons carrying data-sw-output and aria-pressed. */
  constructor(private onPick?: (key: number) => void) {}

  render(items: BarItem[], selected = -1, range?: [number, number]): void {
    const values = items.map((i) => i.value).filter(Number.isFinite);
    const [lo, hi] = range ?? [Math.min(0, ...values), Math.max(0, ...values)];
    const zero = barSpan(0, lo, hi).left;
    this.el.replaceChildren(
      ...items.map((item) => {
        const span = barSpan(item.value, lo, hi);
        const fill = h("div", { class: "sw-bar-fill" });
        fill.style.left = `${span.left * 100}%`;
        fill.style.width = `${Math.max(span.width * 100, 0.5)}%`;
        if (item.color) fill.style.background = item.color;
        const mark = h("div", { class: "sw-bar-zero" });
        mark.style.left = `${zero * 100}%`;
        const row = h("div", { class: "sw-bar", title: item.label }, [
          h("span", { class: "sw-bar-label" }, item.label),
          h("div", { class: "sw-bar-track" }, [fill, mark]),
          h("span", { class: "sw-bar-value" }, formatValue(item.value)),
        ]);
        if (this.onPick) {
          const pick = this.onPick;
          row.setAttribute("role", "button");
          row.setAttribute("tabindex", "0");
          row.setAttribute("data-sw-output", String(item.key));
          row.setAttribute("aria-pressed", String(item.key === selected));
          row.addEventListener("click", () => pick(item.key));
          row.addEventListener("keydown", (ev) => {
            if (ev.key === "Enter" || ev.key === " ") {
              ev.preventDefault();
              pick(item.key);
            }
          });
        }
        return row;
      }),
    );
  }
}

/** Up to this many outputs are all listed; above, top-k plus search and an "all" view. */
export const FULL_LIST_MAX = 16;
const TOP_K = 10;
const SEARCH_LIMIT = 50;

/** Which output indices the panel lists for a query/mode (the selected one always included). */
export function listedOutputs(scores: ArrayLike<number>, labels: string[], selected: number, query: string, showAll: boolean): number[] {
  const n = scores.length;
  if (n <= FULL_LIST_MAX || (showAll && !query.trim())) return Array.from({ length: n }, (_, i) => i);
  const picked = query.trim() ? searchLabels(labels, query, SEARCH_LIMIT) : topK(scores, TOP_K);
  return picked.includes(selected) || selected < 0 || selected >= n ? picked : [selected, ...picked];
}

/** The output panel: every output reachable, the selected one highlighted. */
export class OutputPanel {
  readonly el = h("div", { class: "sw-panel" });
  private list: BarList;
  private search = h("input", { type: "search", placeholder: "search outputs…", "aria-label": "search outputs" });
  private allButton = h("button", { class: "sw-btn", "data-sw-action": "show-all", "aria-pressed": "false" }, "all");
  private title = h("span", {}, "Outputs");
  private sub = h("span", { class: "sw-sub" });
  private note = h("div", { class: "sw-note" });
  private state = { scores: new Float32Array(0) as ArrayLike<number>, labels: [] as string[], selected: -1 };

  constructor(onPick: (key: number) => void) {
    this.list = new BarList(onPick);
    const head = h("div", { class: "sw-panel-head" }, [this.title, this.sub]);
    const tools = h("div", { class: "sw-panel-head" }, [this.search, this.allButton]);
    this.el.append(head, tools, this.list.el, this.note);
    this.search.addEventListener("input", () => this.refresh());
    this.allButton.addEventListener("click", () => {
      this.allButton.setAttribute("aria-pressed", String(this.allButton.getAttribute("aria-pressed") !== "true"));
      this.refresh();
    });
  }

  update(scores: ArrayLike<number>, labels: string[], selected: number, caption: string): void {
    this.state = { scores, labels, selected };
    this.sub.textContent = caption;
    this.refresh();
  }

  private refresh(): void {
    const { scores, labels, selected } = this.state;
    const many = scores.length > FULL_LIST_MAX;
    (this.search.parentElement as HTMLElement).style.display = many ? "" : "none";
    const showAll = this.allButton.getAttribute("aria-pressed") === "true";
    const keys = listedOutputs(scores, labels, selected, this.search.value, showAll);
    const values = Array.from(scores);
    const range: [number, number] = [Math.min(0, ...values), Math.max(0, ...values)];
    this.list.render(keys.map((k) => ({ key: k, label: labels[k] ?? String(k), value: scores[k] })), selected, range);
    this.note.textContent = !many
      ? ""
      : this.search.value.trim()
        ? `${keys.length} match${keys.length === 1 ? "" : "es"} (index or label)`
        : showAll
          ? `all ${scores.length} outputs`
          : `top ${TOP_K} of ${scores.length} · search or “all” to reach any`;
  }
}
