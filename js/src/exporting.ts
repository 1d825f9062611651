/**
 * Export buttons that download the figure `to_figure()` draws: PNG, SVG and PDF files made by the
 * kernel (matplotlib, text kept as text), asked for with a custom message and answered to the view
 * that asked. In an offline `to_html` page (no kernel) PNG and SVG are drawn in the browser instead:
 * title, subtitle, the map, its labels and bars, and the colour bar.
 */
import { colorbarTicks, scaleCaption, type ColorBarState } from "./colorbar";
import { button } from "./controls";
import { download, h } from "./dom";
import { formatValue } from "./format";
import { type AnyModel } from "./model";

export const FORMATS = ["png", "svg", "pdf"] as const;
export type Format = (typeof FORMATS)[number];
const MIME: Record<Format, string> = { png: "image/png", svg: "image/svg+xml", pdf: "application/pdf" };

/** What the offline page draws for an export. */
export interface OfflineFigure {
  title: string;
  subtitle: string;
  /** File name without suffix, e.g. "saliency-class_0-gradient". */
  name: string;
  /** The map as drawn on screen. */
  map: HTMLCanvasElement;
  /** Scale the map smoothly (a picture with text, drawn at twice the size) instead of pixelated (cells). */
  smooth?: boolean;
  /** One labelled bar per feature (vector maps), in the map's colours. */
  bars?: { label: string; value: number; shown: number; color: string }[];
  colorbar: ColorBarState;
  /** A map that is zero up to float rounding: this sentence is drawn in place of the colour bar. */
  note?: string;
}

let nextRequest = 0;

/** PNG / SVG / PDF buttons (data-sw-action="export-<format>"); `offline` draws the figure without a kernel. */
export function figureExports(model: AnyModel, offline: () => OfflineFigure, onError: (message: string) => void): HTMLElement[] {
  const pending = new Map<number, Format>();
  model.on("msg:custom", (...args: unknown[]) => {
    const msg = args[0] as { type?: string; id?: number; filename?: string; error?: string };
    const buffers = (args[1] ?? []) as (ArrayBuffer | DataView)[];
    if (msg?.type !== "export" || msg.id === undefined || !pending.has(msg.id)) return;
    const format = pending.get(msg.id) as Format;
    pending.delete(msg.id);
    if (msg.error || !buffers.length) return onError(msg.error ?? "the kernel sent no file");
    const buf = buffers[0];
    const bytes = buf instanceof DataView ? new Uint8Array(buf.buffer as ArrayBuffer, buf.byteOffset, buf.byteLength) : new Uint8Array(buf);
    download(new Blob([bytes], { type: MIME[format] }), msg.filename ?? `figure.${format}`);
  });
  const ask = (format: Format) => {
    if (model.get("_offline")) return void saveOffline(offline(), format);
    const id = ++nextRequest;
    pending.set(id, format);
    model.send({ type: "export", format, id });
  };
  return FORMATS.filter((f) => f !== "pdf" || !model.get("_offline")).map((f) =>
    button(f.toUpperCase(), `export-${f}`, () => ask(f), `download the figure as ${f.toUpperCase()} (what to_figure() draws)`),
  );
}

async function saveOffline(fig: OfflineFigure, format: Format): Promise<void> {
  const svg = figureSvg(fig);
  if (format === "svg") return download(new Blob([svg.text], { type: MIME.svg }), `${fig.name}.svg`);
  const image = new Image();
  const url = URL.createObjectURL(new Blob([svg.text], { type: MIME.svg }));
  await new Promise((ok, fail) => ((image.onload = ok), (image.onerror = fail), (image.src = url)));
  const scale = 2;
  const canvas = h("canvas", { width: svg.width * scale, height: svg.height * scale });
  const ctx = canvas.getContext("2d") as CanvasRenderingContext2D;
  ctx.scale(scale, scale);
  ctx.drawImage(image, 0, 0);
  URL.revokeObjectURL(url);
  canvas.toBlob((blob) => blob && download(blob, `${fig.name}.png`), "image/png");
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

function text(x: number, y: number, s: string, attrs = ""): string {
  return `<text x="${x}" y="${y}" ${attrs}>${esc(s)}</text>`;
}

/** Average width (px) of a character of the 11 px subtitle: its lines are wrapped to the figure's width. */
const SUBTITLE_CHAR_PX = 6.2;

/** The figure as a standalone SVG document (text as <text>, bars and colour bar as shapes; the subtitle's
 *  lines wrapped to the width). */
export function figureSvg(fig: OfflineFigure): { text: string; width: number; height: number } {
  const pad = 16;
  const mapScale = Math.max(1, Math.floor(480 / Math.max(fig.map.width, 1)));
  const mapW = Math.min(480, fig.map.width * mapScale);
  const mapH = Math.min(fig.bars?.length ? 40 : 640, Math.round((fig.map.height * mapW) / Math.max(fig.map.width, 1)));
  const width = Math.max(mapW, 520) + 2 * pad;
  const parts: string[] = [];
  let y = pad + 14;
  parts.push(text(pad, y, fig.title, 'font-size="15" font-weight="600"'));
  y += 18;
  const subtitle = fig.subtitle.split("\n").flatMap((line) => wrapWords(line, Math.floor((width - 2 * pad) / SUBTITLE_CHAR_PX)));
  subtitle.forEach((line, i) => parts.push(text(pad, y + 14 * i, line, 'font-size="11" fill="#545b67"')));
  y += 12 + 14 * Math.max(0, subtitle.length - 1);
  parts.push(`<image x="${pad}" y="${y}" width="${mapW}" height="${mapH}" preserveAspectRatio="none" style="image-rendering:${fig.smooth ? "auto" : "pixelated"}" href="${fig.map.toDataURL("image/png")}"/>`);
  parts.push(`<rect x="${pad}" y="${y}" width="${mapW}" height="${mapH}" fill="none" stroke="#8a919c" stroke-width="0.5"/>`);
  y += mapH + 16;
  if (fig.bars?.length) {
    const labelW = 190;
    const trackW = width - 2 * pad - labelW - 70;
    const values = fig.bars.map((b) => b.value);
    const lo = Math.min(0, ...values);
    const hi = Math.max(0, ...values);
    const span = hi - lo || 1;
    const zero = pad + labelW + ((0 - lo) / span) * trackW;
    for (const bar of fig.bars) {
      const x = pad + labelW + ((Math.min(bar.value, 0) - lo) / span) * trackW;
      parts.push(text(pad, y + 10, bar.label, 'font-size="11"'));
      parts.push(`<rect x="${x.toFixed(2)}" y="${y + 1}" width="${((Math.abs(bar.value) / span) * trackW).toFixed(2)}" height="11" fill="${bar.color}" stroke="#5f6673" stroke-width="0.4"/>`);
      parts.push(text(width - pad, y + 10, formatValue(bar.shown), 'font-size="11" text-anchor="end" fill="#545b67"'));
      y += 16;
    }
    parts.push(`<line x1="${zero.toFixed(2)}" x2="${zero.toFixed(2)}" y1="${y - 16 * fig.bars.length}" y2="${y}" stroke="#5f6673" stroke-width="0.8"/>`);
    y += 8;
  }
  if (fig.note) {
    const lines = wrapWords(fig.note, 86);
    parts.push(`<rect x="${pad}" y="${y - 2}" width="${width - 2 * pad}" height="${lines.length * 15 + 10}" rx="5" fill="#f2f4f7" stroke="#8a94a6" stroke-width="0.6"/>`);
    lines.forEach((line, i) => parts.push(text(pad + 8, y + 13 + i * 15, line, 'font-size="11.5"')));
    y += lines.length * 15 + 10 + pad;
    return svgDocument(fig, parts, width, y);
  }
  const cb = fig.colorbar;
  const cells = 64;
  for (let i = 0; i < cells; i++) {
    const k = Math.round((i / (cells - 1)) * 255) * 4;
    parts.push(`<rect x="${(pad + (i * 200) / cells).toFixed(2)}" y="${y}" width="${(200 / cells + 0.3).toFixed(2)}" height="10" fill="rgb(${cb.lut[k]},${cb.lut[k + 1]},${cb.lut[k + 2]})"/>`);
  }
  y += 22;
  for (const t of colorbarTicks(cb.sign, cb.m, cb.relative)) {
    const anchor = t.at === 0 ? "start" : t.at === 1 ? "end" : "middle";
    parts.push(text(pad + t.at * 200, y, t.text, `font-size="10" text-anchor="${anchor}"`));
  }
  y += 14;
  parts.push(text(pad, y, scaleCaption(cb), 'font-size="10" fill="#545b67"'));
  return svgDocument(fig, parts, width, y + pad);
}

function svgDocument(fig: OfflineFigure, parts: string[], width: number, height: number): { text: string; width: number; height: number } {
  const body = `<rect width="100%" height="100%" fill="#ffffff"/><g font-family="DejaVu Sans, Arial, sans-serif" fill="#1f2430">${parts.join("")}</g>`;
  return {
    text: `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}"><title>${esc(fig.title)}</title>${body}</svg>`,
    width,
    height,
  };
}

/** `s` broken into lines of at most `chars` characters at spaces. */
export function wrapWords(s: string, chars: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of s.split(/\s+/)) {
    if (line && line.length + 1 + word.length > chars) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}
