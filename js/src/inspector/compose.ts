/** The block table as one canvas (for PNG/SVG export), and the downsampling note. */
import { h } from "../dom";
import type { BlockTable } from "./matrix";

/** "1 cell = 2×4 weights, max |w|", or "" when every weight has its own cell. */
export function downsampleNote([fr, fc]: [number, number]): string {
  return fr * fc > 1 ? `1 cell = ${fr}×${fc} weights, max |w|` : "";
}

/** Every panel drawn where it sits on screen (×2, without smoothing) on a white canvas. */
export function composeTable(table: BlockTable | null): HTMLCanvasElement {
  const scale = 2;
  const box = table?.el.getBoundingClientRect();
  const out = h("canvas", { width: Math.max(1, Math.ceil((box?.width ?? 0) * scale)), height: Math.max(1, Math.ceil((box?.height ?? 0) * scale)) });
  const ctx = out.getContext("2d") as CanvasRenderingContext2D;
  ctx.imageSmoothingEnabled = false;
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, out.width, out.height);
  if (!table || !box) return out;
  for (const p of table.panels) {
    const r = p.heat.canvas.getBoundingClientRect();
    ctx.drawImage(p.heat.canvas, (r.left - box.left) * scale, (r.top - box.top) * scale, r.width * scale, r.height * scale);
  }
  return out;
}
