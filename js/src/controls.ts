/** Toolbar controls, status, error box and export buttons shared by the widgets. */
import { download, h } from "./dom";
import type { AnyModel } from "./model";

/** A labelled <select>; `onChange` gets the chosen value. */
export function select(label: string, action: string, options: [string, string][], onChange: (v: string) => void): HTMLSelectElement {
  const el = h("select", { "data-sw-action": action, "aria-label": label }, options.map(([v, text]) => h("option", { value: v }, text)));
  el.addEventListener("change", () => onChange(el.value));
  return el;
}

/** `label` text followed by a control, as one toolbar field. */
export function field(label: string, control: HTMLElement): HTMLElement {
  return h("label", { class: "sw-field" }, [label, control]);
}

export function button(text: string, action: string, onClick: () => void, title = ""): HTMLButtonElement {
  const el = h("button", { class: "sw-btn", type: "button", "data-sw-action": action, title: title || undefined }, text);
  el.addEventListener("click", onClick);
  return el;
}

/** "sample ‹ i › / n" stepper; `onChange` gets the new 0-based index. */
export class SampleStepper {
  readonly el: HTMLElement;
  private input = h("input", { type: "number", min: 1, step: 1, "data-sw-action": "index", "aria-label": "sample" });
  private total = h("span", {});
  private count = 1;
  private current = 0;

  /** `onChange` runs only for a real change of sample: a `change` event that re-fires on blur
   *  (after Enter) must not re-render the widget under the pointer's next click. */
  constructor(private onChange: (i: number) => void) {
    const go = (i: number) => {
      if (i >= 0 && i < this.count && i !== this.current) {
        this.current = i;
        this.onChange(i);
      }
    };
    this.input.addEventListener("change", () => go(Math.round(Number(this.input.value)) - 1));
    const prev = button("‹", "prev-sample", () => go(Number(this.input.value) - 2), "previous sample");
    const next = button("›", "next-sample", () => go(Number(this.input.value)), "next sample");
    this.el = h("span", { class: "sw-field" }, ["sample", prev, this.input, next, this.total]);
  }

  /** The stepper's buttons and box. */
  get controls(): HTMLElement[] {
    return Array.from(this.el.querySelectorAll<HTMLElement>("button, input"));
  }

  update(index: number, count: number): void {
    this.count = count;
    this.current = index;
    if (this.input.value !== String(index + 1)) this.input.value = String(index + 1);
    this.input.max = String(count);
    this.total.textContent = `/ ${count}`;
    this.el.style.display = count > 1 ? "" : "none";
  }
}

/** The in-widget error message (data-sw-role="error"); hidden when empty. */
export class ErrorBox {
  readonly el = h("div", { class: "sw-error", "data-sw-role": "error", role: "alert", hidden: true });
  private text = h("span", {});

  constructor() {
    const close = h("button", { type: "button", "aria-label": "dismiss" }, "×");
    close.addEventListener("click", () => (this.el.hidden = true));
    this.el.append(this.text, close);
  }

  show(message: string): void {
    this.text.textContent = message;
    this.el.hidden = !message;
  }

  /** Shows the kernel's error messages, `{type: "error", message}` ("" hides the box): messages, not a
   *  trait, so an error is never saved with the notebook, restored on reload or written into a to_html
   *  page. Returns the unsubscribe. */
  follow(model: AnyModel): () => void {
    const listener = (...args: unknown[]) => {
      const msg = args[0] as { type?: string; message?: string } | undefined;
      if (msg?.type === "error") this.show(String(msg.message ?? ""));
    };
    model.on("msg:custom", listener);
    return () => model.off("msg:custom", listener);
  }
}

/** "computing…" indicator (data-sw-role="status"). */
export function statusBadge(): HTMLElement {
  return h("span", { class: "sw-status", "data-sw-role": "status", "data-busy": "false" }, "computing…");
}

/** A PNG data URL of `canvas`, and an SVG wrapping it (pixelated) with a title. */
export function svgOf(canvas: HTMLCanvasElement, title: string): string {
  const w = canvas.width;
  const hgt = canvas.height;
  const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${hgt + 24}" viewBox="0 0 ${w} ${hgt + 24}">` +
    `<title>${esc(title)}</title><text x="0" y="16" font-family="sans-serif" font-size="13">${esc(title)}</text>` +
    `<image x="0" y="24" width="${w}" height="${hgt}" style="image-rendering:pixelated" href="${canvas.toDataURL("image/png")}"/></svg>`
  );
}

/** Export buttons (data-sw-action="export-png" / "export-svg") for a composed canvas. */
export function exportButtons(compose: () => { canvas: HTMLCanvasElement; title: string; name: string }): HTMLElement[] {
  const png = button("PNG", "export-png", () => {
    const { canvas, name } = compose();
    canvas.toBlob((blob) => blob && download(blob, `${name}.png`), "image/png");
  }, "download the map as PNG");
  const svg = button("SVG", "export-svg", () => {
    const { canvas, title, name } = compose();
    download(new Blob([svgOf(canvas, title)], { type: "image/svg+xml" }), `${name}.svg`);
  }, "download the map as SVG");
  return [png, svg];
}

/** Draws `layers` (stacked canvases) onto one canvas of width×height without smoothing. */
export function composeLayers(layers: HTMLCanvasElement[], width: number, height: number, opacities: number[] = []): HTMLCanvasElement {
  const out = h("canvas", { width: Math.round(width), height: Math.round(height) });
  const ctx = out.getContext("2d") as CanvasRenderingContext2D;
  ctx.imageSmoothingEnabled = false;
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, out.width, out.height);
  layers.forEach((c, i) => {
    ctx.globalAlpha = opacities[i] ?? 1;
    ctx.drawImage(c, 0, 0, out.width, out.height);
  });
  return out;
}

/** The style of `KernelOnly`'s note and of the controls it disables. */
export const KERNEL_CSS = `
.sw-root .sw-offline-note{white-space:normal;max-width:760px;padding:5px 10px;border-radius:6px;background:var(--sw-soft);border:1px solid var(--sw-line);border-left:3px solid var(--sw-accent);color:var(--sw-fg);font-size:12px;line-height:1.45}
.sw-root .sw-offline-note[hidden]{display:none}
.sw-root [aria-disabled=true]{opacity:.5;cursor:not-allowed}
`;

/** Why no kernel answers a view, and what to do about it (as `KernelOnly`'s note says it). */
export interface NoKernel {
  reason: string;
  remedy: string;
}

/** A page written by `to_html`. */
export const OFFLINE_PAGE: NoKernel = { reason: "Offline page (to_html): no Python kernel runs here", remedy: "run the notebook to use them" };

/**
 * Controls that need a running kernel. Where none answers (`reason` given: an offline `to_html` page, or a
 * view built from a computed result) they are disabled, their tooltip says why, and one note
 * (`data-sw-role="offline-note"`) lists what needs the kernel; everything else on the page keeps working.
 * Where a kernel answers (`reason` null) nothing is touched and the note stays hidden.
 */
export class KernelOnly {
  readonly note = h("div", { class: "sw-note sw-offline-note", "data-sw-role": "offline-note", role: "note", hidden: true });
  private needs: string[] = [];
  private lines = new Map<string, boolean>();

  /** `why`: why no kernel answers, or null when one does; `place` puts the note on the page the first time it
   *  has something to say (a view with nothing to say holds no note element). */
  constructor(readonly why: NoKernel | null, private place: (note: HTMLElement) => void = () => {}) {}

  /** True when no kernel answers. */
  get off(): boolean {
    return this.why !== null;
  }

  /** `controls` need the kernel for `what` ("other samples"): disabled when none answers. */
  need(what: string, ...controls: (HTMLElement | null | undefined)[]): void {
    if (!this.off) return;
    for (const control of controls) {
      if (!control) continue;
      control.setAttribute("disabled", "");
      control.setAttribute("aria-disabled", "true");
      control.title = `${what}: needs a running Python kernel`;
    }
    if (!this.needs.includes(what)) this.needs.push(what);
    this.render();
  }

  /** A line the note shows while `on` (what the page cannot answer right now, or how its data was kept). */
  say(line: string, on: boolean): void {
    if (this.lines.get(line) === on) return;
    this.lines.set(line, on);
    this.render();
  }

  private render(): void {
    const extra = [...this.lines].filter(([, on]) => on).map(([line]) => line);
    const why = this.why;
    const parts = why && this.needs.length ? [`${why.reason}: ${listed(this.needs)} need one; ${why.remedy}.`] : [];
    this.note.textContent = [...parts, ...extra].join(" ");
    this.note.hidden = parts.length + extra.length === 0;
    if (!this.note.hidden && !this.note.parentNode) this.place(this.note);
  }
}

/** "a", "a and b", "a, b and c". */
export function listed(items: string[]): string {
  return items.length < 2 ? items.join("") : `${items.slice(0, -1).join(", ")} and ${items[items.length - 1]}`;
}
