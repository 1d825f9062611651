/** The block table as one canvas (for PNG/SVG export), and the downsampling note. */
import { h } from "../dom";
import type { BlockTable } from "./matrix";

/** "1 cell = 2×4 weights, max |w|", or "" when every weight has its own cell. */
export function downsampleNote([fr, fc]: [number, number]): string {
  return fr * fc > 1 ? `1 cell = ${fr}×${fc} weights, max |w|` : "";
}

/** Every panel drawn where it sits on screen (×2, without smoothing), under a title. */
export function composeTable(table: BlockTable | null, layer: string): HTMLCanvasElement {
  const scale = 2;
  const head = 24;
  const box = table?.el.getBoundingClientRect();
  const out = h("canvas", { width: Math.max(200, Math.ceil((box?.width ?? 0) * scale)), height: Math.ceil((box?.height ?? 0) * scale) + head });
  const ctx = out.getContext("2d") as CanvasRenderingContext2D;
  ctx.imageSmoothingEnabled = false;
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, out.width, out.height);
  ctx.fillStyle = "#1f2430";
  ctx.font = "14px sans-serif";
  ctx.fillText(`weights of ${layer}`, 0, 16);
  if (!table || !box) return out;
  ctx.font = "12px sans-serif";
  for (const p of table.panels) {
    const r = p.heat.canvas.getBoundingClientRect();
    const x = (r.left - box.left) * scale;
    const y = (r.top - box.top) * scale + head;
    ctx.drawImage(p.heat.canvas, x, y, r.width * scale, r.height * scale);
  }
  return out;
}
