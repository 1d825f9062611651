/** The text view: one chip per token, filled with the colour of its attribution
 *  (summed over the embedding axis by the caller); padding positions hidden. */
import { toIndex, type Sign } from "./colors";
import { h, throttleFrame } from "./dom";
import { formatValue } from "./format";
import type { Tooltip } from "./heatmap";
import { injectStyle } from "./style";

const TEXT_CSS = `
.sw-tokens{display:flex;flex-wrap:wrap;gap:4px 3px;max-width:640px;line-height:1.2;padding:2px 0}
.sw-token{font:12px/1.3 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;padding:2px 5px;border-radius:4px;box-shadow:0 0 0 1px var(--sw-line);cursor:default;white-space:pre}
.sw-token[hidden]{display:none}
.sw-token-off{color:var(--sw-muted)}
.sw-break{flex-basis:100%;height:0}
`;

export interface TokenState {
  index?: number;
  tokens?: string[];
  hidden?: boolean[];
}

/** Text colour that stays readable on an RGB fill (WCAG relative luminance): black or white, whichever
 *  contrasts more, so every fill gets at least 4.5:1 (a softer dark ink falls to 3.9:1 on mid blues). */
export function inkFor(r: number, g: number, b: number): string {
  const lin = (c: number) => {
    const s = c / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  };
  const luminance = 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
  return luminance > 0.18 ? "#000000" : "#ffffff";
}

/** A token as its chip shows it: newlines as ↵ and tabs as ⇥, spaces kept (`shown_token` in generation/figure.py). */
export function shownToken(token: string): string {
  return token.replace(/\r\n?/g, "\n").replace(/\n/g, "↵").replace(/\t/g, "⇥");
}

/** The hover text of chip `k` whose attribution is `value`. */
export type Describe = (k: number, value: number) => string;

export class TokenChips {
  readonly el = h("div", { class: "sw-tokens", role: "img" });
  private chips: HTMLSpanElement[] = [];
  private values: Float32Array = new Float32Array(0);
  private state: TokenState = {};

  /** `describe` (default: token, position and attribution) gives each chip's hover text. */
  constructor(private tooltip: Tooltip, describe?: Describe) {
    const text = describe ?? ((k: number, v: number) => `${this.state.tokens?.[k] ?? `#${k}`} (position ${k})\nattribution ${formatValue(v)}\n(summed over the embedding axis)`);
    const hover = throttleFrame((ev: MouseEvent) => {
      const chip = (ev.target as HTMLElement).closest<HTMLElement>("[data-sw-token]");
      if (!chip) return this.tooltip.hide();
      const k = Number(chip.dataset.swToken);
      this.tooltip.show(text(k, this.values[k]), ev);
    });
    this.el.addEventListener("mousemove", hover);
    this.el.addEventListener("mouseleave", () => requestAnimationFrame(() => this.tooltip.hide()));
  }

  /** The chips, in reading order (rebuilt by `setTokens`). */
  get items(): readonly HTMLSpanElement[] {
    return this.chips;
  }

  /** The current sample's tokens; chips are rebuilt only when the sample changes. A token holding a
   *  newline ends its line. Returns whether the chips were rebuilt. */
  setTokens(state: TokenState, length: number): boolean {
    if (state.index === this.state.index && this.chips.length === length && state.tokens === this.state.tokens) return false;
    this.state = state;
    this.chips = Array.from({ length }, (_, k) =>
      h("span", { class: "sw-token", "data-sw-token": String(k) }, shownToken(state.tokens?.[k] ?? `#${k}`)),
    );
    this.chips.forEach((chip, k) => (chip.hidden = Boolean(state.hidden?.[k])));
    this.el.replaceChildren(...this.chips.flatMap((chip, k) => (/[\r\n]/.test(state.tokens?.[k] ?? "") ? [chip, h("span", { class: "sw-break" })] : [chip])));
    return true;
  }

  /** Fills the chips with the colours of `values`; `raw` (default `values`) is what hover reports.
   *  Chips from `limit` on stay unfilled (e.g. those that cannot have caused an explained token). */
  draw(values: Float32Array, sign: Sign, m: number, lut: Uint8Array, raw: Float32Array = values, limit = values.length): void {
    injectStyle(this.el, "sw-style-text", TEXT_CSS); // once per document or shadow root, once attached
    this.values = raw;
    if (this.chips.length !== values.length) this.setTokens(this.state, values.length);
    this.chips.forEach((chip, k) => {
      chip.classList.toggle("sw-token-off", k >= limit);
      if (k >= limit) {
        chip.style.background = chip.style.color = "";
        return;
      }
      const i = toIndex(values[k], sign, m) * 4;
      chip.style.background = `rgb(${lut[i]},${lut[i + 1]},${lut[i + 2]})`;
      chip.style.color = inkFor(lut[i], lut[i + 1], lut[i + 2]);
    });
    const shown = this.chips.filter((c) => !c.hidden).length;
    this.el.setAttribute("aria-label", `attribution of ${shown} tokens, summed over the embedding axis`);
  }
}
