/** Horizontal bar lists: the clickable output panel and read-only value lists. */
import { h } from "./dom";
import { formatValue } from "./format";
import { barSpan, searchLabels, topK } from "./ranking";

export interface BarItem {
  /** Flat output index (clickable lists) or feature index. */
  key: number;
  label: string;
  /** Where the bar ends (on the list's track). */
  value: number;
  /** The number printed beside the bar (defaults to `value`). */
  shown?: number;
  /** CSS colour of the fill (defaults to the theme's). */
  color?: string;
  /** The output the selected one is contrasted with ("versus"): marked, and named so in its title. */
  versus?: boolean;
}

interface Row {
  el: HTMLElement;
  label: HTMLElement;
  fill: HTMLElement;
  mark: HTMLElement;
  value: HTMLElement;
}

/** Next row index for a navigation key (arrows, Home, End), or null for other keys. */
export function stepKey(key: string, at: number, count: number): number | null {
  if (count === 0) return null;
  const moves: Record<string, number> = { ArrowDown: at + 1, ArrowRight: at + 1, ArrowUp: at - 1, ArrowLeft: at - 1, Home: 0, End: count - 1 };
  if (!(key in moves)) return null;
  return Math.min(count - 1, Math.max(0, moves[key]));
}

/**
 * A list of labelled bars on a shared zero-based track. Rows are kept per key and
 * updated in place, so a re-render never replaces the element under the pointer
 * (a click that started on a row still lands on it).
 */
export class BarList {
  readonly el = h("div", { class: "sw-list" });
  private rows = new Map<number, Row>();
  private order: number[] = [];

  /** With `onPick`, rows are buttons carrying data-sw-output and aria-pressed; arrows move the selection.
   *  `onPick` learns whether Alt was held (a click or Enter): the widget's second choice, e.g. a contrast. */
  constructor(private onPick?: (key: number, alt: boolean) => void, label = "") {
    if (onPick) {
      this.el.setAttribute("role", "group");
      this.el.addEventListener("keydown", (ev) => this.onKey(ev));
    }
    if (label) this.el.setAttribute("aria-label", label);
  }

  render(items: BarItem[], selected = -1, range?: [number, number]): void {
    const values = items.map((i) => i.value).filter(Number.isFinite);
    const [lo, hi] = range ?? [Math.min(0, ...values), Math.max(0, ...values)];
    const zero = barSpan(0, lo, hi).left;
    const keys = items.map((i) => i.key);
    const focusable = keys.includes(selected) ? selected : keys[0];
    const live = new Set(keys);
    for (const [key, row] of this.rows) if (!live.has(key)) (row.el.remove(), this.rows.delete(key));
    items.forEach((item) => {
      const row = this.rows.get(item.key) ?? this.makeRow(item.key);
      const span = barSpan(item.value, lo, hi);
      row.label.textContent = item.label;
      row.el.title = item.versus ? `${item.label} · versus: the map explains the selected output minus this one` : item.label;
      row.el.classList.toggle("sw-versus", Boolean(item.versus));
      row.fill.style.left = `${span.left * 100}%`;
      row.fill.style.width = `${Math.max(span.width * 100, 0.5)}%`;
      row.fill.style.background = item.color ?? "";
      row.mark.style.left = `${zero * 100}%`;
      row.value.textContent = formatValue(item.shown ?? item.value);
      if (this.onPick) {
        row.el.setAttribute("aria-pressed", String(item.key === selected));
        row.el.tabIndex = item.key === focusable ? 0 : -1;
      } else {
        row.el.setAttribute("aria-current", String(item.key === selected));
      }
    });
    if (keys.length !== this.order.length || keys.some((k, i) => k !== this.order[i])) {
      keys.forEach((k) => this.el.append((this.rows.get(k) as Row).el));
      this.order = keys;
    }
  }

  /** Moves keyboard focus to the row of `key` if it is listed. */
  focus(key: number): void {
    this.rows.get(key)?.el.focus();
  }

  private makeRow(key: number): Row {
    const label = h("span", { class: "sw-bar-label" });
    const fill = h("div", { class: "sw-bar-fill" });
    const mark = h("div", { class: "sw-bar-zero" });
    const value = h("span", { class: "sw-bar-value" });
    const el = h("div", { class: "sw-bar" }, [label, h("div", { class: "sw-bar-track" }, [fill, mark]), value]);
    if (!this.onPick) el.setAttribute("data-sw-feature", String(key));
    else {
      const pick = this.onPick;
      el.setAttribute("role", "button");
      el.setAttribute("data-sw-output", String(key));
      el.addEventListener("click", (ev) => pick(key, ev.altKey));
    }
    const row = { el, label, fill, mark, value };
    this.rows.set(key, row);
    return row;
  }

  private onKey(ev: KeyboardEvent): void {
    const at = this.order.indexOf(Number((ev.target as HTMLElement).getAttribute("data-sw-output")));
    if (at < 0 || !this.onPick) return;
    if (ev.key === "Enter" || ev.key === " ") {
      ev.preventDefault();
      this.onPick(this.order[at], ev.altKey);
      return;
    }
    const next = stepKey(ev.key, at, this.order.length);
    if (next === null) return;
    ev.preventDefault();
    const key = this.order[next];
    this.onPick(key, false);
    this.focus(key);
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
  private search = h("input", { type: "search", placeholder: "search outputs…", "aria-label": "search outputs", "data-sw-role": "search" });
  private allButton = h("button", { class: "sw-btn", type: "button", "data-sw-action": "show-all", "aria-pressed": "false" }, "all");
  private title = h("span", {}, "Outputs");
  private sub = h("span", { class: "sw-sub" });
  private note = h("div", { class: "sw-note", "aria-live": "polite" });
  private state = { scores: new Float32Array(0) as ArrayLike<number>, labels: [] as string[], selected: -1, versus: null as number | null };

  /** `onPick(key, alt)`: a click (`alt`: with Alt held) on an output. */
  constructor(private onPick: (key: number, alt: boolean) => void) {
    this.list = new BarList(onPick, "outputs");
    const head = h("div", { class: "sw-panel-head" }, [this.title, this.sub]);
    const tools = h("div", { class: "sw-panel-head" }, [this.search, this.allButton]);
    this.el.append(head, tools, this.list.el, this.note);
    this.search.addEventListener("input", () => this.refresh());
    this.search.addEventListener("keydown", (ev) => {
      if (ev.key !== "Enter") return;
      ev.preventDefault();
      const { scores, labels } = this.state;
      const first = searchLabels(labels, this.search.value, 1)[0] ?? (this.search.value.trim() ? undefined : topK(scores, 1)[0]);
      if (first !== undefined) this.onPick(first, false);
    });
    this.allButton.addEventListener("click", () => {
      this.allButton.setAttribute("aria-pressed", String(this.allButton.getAttribute("aria-pressed") !== "true"));
      this.refresh();
    });
  }

  /** `versus`: the output the selected one is contrasted with (marked in the list), or null. */
  update(scores: ArrayLike<number>, labels: string[], selected: number, caption: string, versus: number | null = null): void {
    this.state = { scores, labels, selected, versus };
    this.sub.textContent = caption;
    this.refresh();
  }

  private refresh(): void {
    const { scores, labels, selected, versus } = this.state;
    const many = scores.length > FULL_LIST_MAX;
    (this.search.parentElement as HTMLElement).style.display = many ? "" : "none";
    const showAll = this.allButton.getAttribute("aria-pressed") === "true";
    const keys = listedOutputs(scores, labels, selected, this.search.value, showAll);
    if (versus !== null && versus < scores.length && !keys.includes(versus)) keys.push(versus);
    const values = Array.from(scores);
    const range: [number, number] = [Math.min(0, ...values), Math.max(0, ...values)];
    this.list.render(keys.map((k) => ({ key: k, label: labels[k] ?? String(k), value: scores[k], versus: k === versus })), selected, range);
    this.note.textContent = !many
      ? ""
      : this.search.value.trim()
        ? `${keys.length} match${keys.length === 1 ? "" : "es"} (index or label) · Enter selects the first`
        : showAll
          ? `all ${scores.length} outputs`
          : `top ${TOP_K} of ${scores.length} · search or “all” to reach any`;
  }
}
