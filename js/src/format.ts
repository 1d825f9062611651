/** Number formatting shared by tooltips, bars and colour bars. */

/** A compact, exact-enough rendering: 4 significant digits, exponent for tiny/huge values. */
export function formatValue(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(3).replace(/\.?0+e/, "e");
  return String(Number(v.toPrecision(4)));
}
