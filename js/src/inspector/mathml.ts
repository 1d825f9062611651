/** Typesets the inspector's plain-text equations ("i_t = σ(W_ii x_t + h_{t−1})") as MathML. */

const NS = "http://www.w3.org/1998/Math/MathML";

/** A MathML element: tag, text (token elements) or children, attributes. */
export interface MathNode {
  tag: string;
  text?: string;
  children?: MathNode[];
  attrs?: Record<string, string>;
}

const LETTER = /[A-Za-z\u0370-\u03ff]/;
const MARK = /[\u0300-\u036f]/;
const SUB_WORD = /[A-Za-z0-9*\u0370-\u03ff]/;

/** The parse tree of one line: identifiers, numbers, operators and subscripts (`x_t`, `h_{t−1}`). */
export function parseMath(text: string): MathNode {
  let i = 0;
  const row = (stop: string | null): MathNode => {
    const out: MathNode[] = [];
    while (i < text.length && text[i] !== stop) {
      const ch = text[i];
      if (ch === " ") {
        i++;
        if (out.length && i < text.length && isOperand(out[out.length - 1]) && !/[=+−\-·⊙×),]/.test(text[i])) {
          out.push({ tag: "mspace", attrs: { width: "0.22em" } });
        }
      } else if (ch === "_" && out.length) {
        i++;
        out.push({ tag: "msub", children: [out.pop() as MathNode, subscript()] });
      } else if (LETTER.test(ch)) {
        let word = "";
        while (i < text.length && (LETTER.test(text[i]) || MARK.test(text[i]))) word += text[i++];
        out.push(identifiers(word));
      } else if (/[0-9]/.test(ch)) {
        let num = "";
        while (i < text.length && /[0-9.]/.test(text[i])) num += text[i++];
        out.push({ tag: "mn", text: num });
      } else {
        i++;
        out.push({ tag: "mo", text: ch === "-" ? "−" : ch });
      }
    }
    return { tag: "mrow", children: out };
  };
  const subscript = (): MathNode => {
    if (text[i] === "{") {
      i++;
      const inner = row("}");
      i++;
      return inner;
    }
    let word = "";
    while (i < text.length && SUB_WORD.test(text[i])) word += text[i++];
    return /^[0-9]+$/.test(word) ? { tag: "mn", text: word } : { tag: "mi", text: word, attrs: { mathvariant: "italic" } };
  };
  return row(null);
}

function isOperand(node: MathNode): boolean {
  return node.tag !== "mo" && node.tag !== "mspace";
}

/** One letter (with its combining marks) is a variable; a longer word is a function name (tanh, relu). */
function identifiers(word: string): MathNode {
  const letters = word.match(/[^\u0300-\u036f][\u0300-\u036f]*/g) ?? [];
  return letters.length === 1 ? { tag: "mi", text: word } : { tag: "mi", text: word, attrs: { mathvariant: "normal" } };
}

/** The DOM of a parse tree inside a <math> element. */
export function mathElement(node: MathNode, display: "block" | "inline" = "block"): Element {
  const math = document.createElementNS(NS, "math");
  math.setAttribute("display", display);
  math.append(build(node));
  return math;
}

function build(node: MathNode): Element {
  const el = document.createElementNS(NS, node.tag);
  for (const [k, v] of Object.entries(node.attrs ?? {})) el.setAttribute(k, v);
  if (node.text !== undefined) el.textContent = node.text;
  for (const c of node.children ?? []) el.append(build(c));
  return el;
}

/** Splits prose into text and symbols such as `W_i*` or `h_{t−1}` (typeset inline). */
export function proseParts(text: string): { math: boolean; text: string }[] {
  const parts: { math: boolean; text: string }[] = [];
  const symbol = /(?<![A-Za-z0-9_])[A-Za-z\u0370-\u03ff][\u0300-\u036f]?_(\{[^}]*\}|[A-Za-z0-9*]+)/g;
  let last = 0;
  for (const m of text.matchAll(symbol)) {
    const at = m.index ?? 0;
    if (at > last) parts.push({ math: false, text: text.slice(last, at) });
    parts.push({ math: true, text: m[0] });
    last = at + m[0].length;
  }
  if (last < text.length) parts.push({ math: false, text: text.slice(last) });
  return parts;
}
