import { describe, expect, it } from "vitest";
import { listed } from "../src/controls";
import { dequantize } from "../src/decode";
import { formatSeconds, nextShown, progressText, type ProgressReport } from "../src/progress";

const report = (id: number, fraction: number, done = false): ProgressReport => ({
  type: "progress", id, fraction, elapsed: 2, remaining: 3, label: "integrated gradients", done, cancellable: true,
});

describe("progress text", () => {
  it("says the fraction done, the time elapsed and about how long is left", () => {
    expect(progressText({ fraction: 0.426, elapsed: 3.14, remaining: 4.2, label: "integrated gradients" }))
      .toBe("integrated gradients · 42 % · 3.1 s · about 4.2 s left");
    expect(progressText({ fraction: 0, elapsed: 0.31, remaining: null, label: "" })).toBe("0 % · 0.3 s");
  });
  it("writes seconds, tens of seconds and minutes", () => {
    expect([formatSeconds(0.42), formatSeconds(12.4), formatSeconds(125), formatSeconds(-1)]).toEqual(["0.4 s", "12 s", "2 min 05 s", ""]);
  });
});

describe("which computation the bar shows", () => {
  it("follows the newest, ignores late reports of a superseded one and hides with its own end", () => {
    let shown = nextShown(null, report(1, 0.2));
    expect(shown?.id).toBe(1);
    shown = nextShown(shown, report(2, 0.1));
    expect(shown?.id).toBe(2);
    expect(nextShown(shown, report(1, 0.5))?.id).toBe(2); // the superseded one's last pass
    expect(nextShown(shown, report(1, 1, true))?.id).toBe(2); // and its end
    expect(nextShown(shown, report(2, 1, true))).toBeNull();
  });
});

describe("8-bit maps of an offline page", () => {
  it("decode each row with its own scale; zero stays zero", () => {
    const codes = new Uint8Array([128, 255, 1, 128, 192, 64]);
    const out = dequantize({ data: codes, shape: [2, 3], dtype: "q8", scales: [2, 0.5] });
    expect(Array.from(out).map((v) => Math.round(v * 1e4) / 1e4)).toEqual([0, 2, -2, 0, 0.252, -0.252]);
  });
});

describe("listed", () => {
  it("joins what needs a kernel", () => {
    expect([listed(["a"]), listed(["a", "b"]), listed(["a", "b", "c"])]).toEqual(["a", "a and b", "a, b and c"]);
  });
});
