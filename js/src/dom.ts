/** Tiny DOM builder. User data (labels, names) only ever goes through textContent. */

type Attrs = Record<string, string | number | boolean | undefined>;

/** An element with attributes (`data-*`, `aria-*`, `class`, ...) and text or child nodes. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  children: (Node | string)[] | string = [],
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    el.setAttribute(k, v === true ? "" : String(v));
  }
  if (typeof children === "string") el.textContent = children;
  else for (const c of children) el.append(c);
  return el;
}

/** Calls `fn` at most once per animation frame with the latest arguments. */
export function throttleFrame<A extends unknown[]>(fn: (...args: A) => void): (...args: A) => void {
  let pending: A | null = null;
  return (...args: A) => {
    const first = pending === null;
    pending = args;
    if (first) {
      requestAnimationFrame(() => {
        const a = pending as A;
        pending = null;
        fn(...a);
      });
    }
  };
}

/** Saves `blob` as `filename` through a temporary link. */
export function download(blob: Blob, filename: string): void {
  const url = URL.createObjectURL(blob);
  const a = h("a", { href: url, download: filename });
  a.style.display = "none";
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 5000);
}
