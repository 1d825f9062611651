/** Text measurement, so labels get the room they need instead of being clipped. */

/** The widgets' body font (kept in step with style.ts). */
export const FONT = '12.5px system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif';

let context: CanvasRenderingContext2D | null = null;

/** Width in CSS pixels of `text` drawn in `font`. */
export function textWidth(text: string, font = FONT): number {
  context ??= document.createElement("canvas").getContext("2d");
  if (!context) return text.length * 7;
  context.font = font;
  return context.measureText(text).width;
}

/** A label column wide enough for the longest of `labels`, clamped to [min, max] pixels. */
export function labelColumn(labels: string[], max = 240, min = 40, font = FONT): number {
  let widest = 0;
  for (const label of labels) widest = Math.max(widest, textWidth(label, font));
  return Math.ceil(Math.min(max, Math.max(min, widest + 10)));
}

/** `text` cut with an ellipsis so it fits `max` pixels in `font` (unchanged when it fits). */
export function fitText(text: string, max: number, font = FONT): string {
  if (textWidth(text, font) <= max) return text;
  let lo = 0;
  let hi = text.length;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (textWidth(text.slice(0, mid) + "…", font) <= max) lo = mid;
    else hi = mid - 1;
  }
  return text.slice(0, lo) + "…";
}

/** A label as part of a file name: characters other than letters, digits, "_", "." and "-" become "_"
 *  (``slug`` in saliency_widgets/widgets/_export.py). */
export function slug(label: string): string {
  return label.trim().replace(/[^A-Za-z0-9_.-]+/g, "_") || "output";
}
