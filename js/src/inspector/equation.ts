/** A recurrent layer's update equations, typeset, with the legend that maps symbols to blocks. */
import { h } from "../dom";
import { mathElement, parseMath, proseParts } from "./mathml";

/** Fills `el` with one display equation per math line and the prose lines below them; hides it when empty. */
export function showEquation(el: HTMLElement, math: string[], notes: string[]): void {
  el.replaceChildren(
    ...math.map((line) => {
      const node = mathElement(parseMath(line));
      node.setAttribute("aria-label", line);
      return node;
    }),
    ...notes.map((line) =>
      h("div", { class: "sw-wi-prose" }, proseParts(line).map((p) => (p.math ? (mathElement(parseMath(p.text), "inline") as unknown as Node) : p.text))),
    ),
  );
  el.dataset.swText = [...math, ...notes].join("\n");
  el.hidden = math.length + notes.length === 0;
}
