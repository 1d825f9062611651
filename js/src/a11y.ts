/**
 * Keyboard and screen-reader pieces of the JacobianGrid, the WeightInspector and the SaliencyMap: a focus ring that cannot be
 * mistaken for the selection, and a polite live region that says what was just selected.
 *
 * The selection is the accent colour (a solid accent border on an accent-tinted fill); the keyboard focus is a
 * dashed ring in the text colour, drawn outside the element (inside it, clear of the selection's border, for the
 * grid's row labels and the inspector's layers, whose scrolling boxes would cut an outer ring). Scoped to these widgets: `.sw-root :focus-visible` in style.ts
 * (the accent outline) still serves the others.
 */
import { h } from "./dom";
import { injectStyle } from "./style";

/** The widgets (`data-sw-widget`) the rules below apply to. */
const SCOPE = ".sw-root:is([data-sw-widget=jacobian-grid],[data-sw-widget=weight-inspector],[data-sw-widget=saliency-map])";

export const A11Y_CSS = `
${SCOPE} :focus-visible{outline:2px dashed var(--sw-fg);outline-offset:2px}
${SCOPE} :is(.sw-rowlabels>div,.sw-list>*):focus-visible{outline-offset:-3px}
${SCOPE} .sw-grid{padding:4px}
.sw-sr-only{position:absolute;width:1px;height:1px;padding:0;margin:-1px;overflow:hidden;clip-path:inset(50%);white-space:nowrap;border:0}
`;

/** Adds the focus-ring rules once to the root node `el` lives in. */
export function injectA11yStyle(el: HTMLElement): void {
  injectStyle(el, "sw-style-a11y", A11Y_CSS);
}

/** A visually hidden `aria-live="polite"` region (data-sw-role="announce"); `say` replaces its text. */
export class Announcer {
  readonly el = h("div", { class: "sw-sr-only", "aria-live": "polite", "aria-atomic": "true", "data-sw-role": "announce" });
  private last: string | null = null;

  /** Announces `text` when `key` differs from the previous call's; the first call only records the key
   *  (the initial state is not news). */
  say(key: string, text: string): void {
    if (this.last !== null && key !== this.last) this.el.textContent = text;
    this.last = key;
  }
}
