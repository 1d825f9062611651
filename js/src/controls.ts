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
