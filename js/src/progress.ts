/**
 * Progress of a slow computation in the kernel (`data-sw-role="progress"`) and its cancel button
 * (`data-sw-action="cancel"`). The kernel reports `{type: "progress", id, fraction, elapsed, remaining,
 * label, done, cancellable}` custom messages once a computation has run 0.3 s (saliency_widgets/progress.py),
 * at most ten a second; the bar shows the fraction done, the time elapsed and an estimate of the time
 * left, and disappears with the `done` report of the computation it shows. Cancel sends
 * `{type: "cancel", id}`; the kernel stops at its next pass and puts back what was asked.
 * Messages, not traits: progress is never saved with the notebook nor written into a to_html page.
 */
import { button } from "./controls";
import { h } from "./dom";
import type { AnyModel } from "./model";
import { injectStyle } from "./style";

export interface ProgressReport {
  type: "progress";
  /** The computation reported (a newer one replaces it on screen). */
  id: number;
  /** Fraction done, 0..1. */
  fraction: number;
  /** Seconds since it started. */
  elapsed: number;
  /** Estimated seconds left; null before the first pass. */
  remaining: number | null;
  /** What it computes ("integrated gradients", "Jacobian"). */
  label: string;
  /** The computation ended (finished, failed or cancelled). */
  done: boolean;
  /** It runs beside the kernel, which can stop it (else the cancel button is hidden). */
  cancellable: boolean;
}

const CSS = `
.sw-progress{display:inline-flex;align-items:center;gap:8px;color:var(--sw-fg);font-variant-numeric:tabular-nums}
.sw-progress[hidden]{display:none}
.sw-progress-track{position:relative;width:120px;height:6px;border-radius:3px;background:var(--sw-accent-soft);overflow:hidden;box-shadow:inset 0 0 0 1px var(--sw-outline)}
.sw-progress-fill{position:absolute;left:0;top:0;bottom:0;background:var(--sw-accent);border-radius:3px;transition:width .12s linear}
.sw-progress-text{color:var(--sw-muted);white-space:nowrap}
.sw-progress .sw-btn{height:20px;padding:0 7px;font-size:11.5px}
`;

/** "0.4 s", "12 s", "2 min 05 s". */
export function formatSeconds(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "";
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const s = Math.round(seconds);
  return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
}

/** "integrated gradients · 42 % · 3.1 s · about 4.2 s left". */
export function progressText(report: Pick<ProgressReport, "fraction" | "elapsed" | "remaining" | "label">): string {
  const parts = [report.label, `${Math.floor(100 * Math.min(1, Math.max(0, report.fraction)))} %`, formatSeconds(report.elapsed)];
  if (report.remaining !== null && report.remaining !== undefined) parts.push(`about ${formatSeconds(report.remaining)} left`);
  return parts.filter(Boolean).join(" · ");
}

/** Which report a view shows after `report` arrives, given the one it shows (`null`: none). */
export function nextShown(shown: ProgressReport | null, report: ProgressReport): ProgressReport | null {
  if (shown !== null && report.id < shown.id) return shown; // a late report of a superseded computation
  return report.done ? (shown === null || shown.id === report.id ? null : shown) : report;
}

export class ProgressBar {
  readonly el = h("div", { class: "sw-progress", "data-sw-role": "progress", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100, "aria-live": "off", hidden: true });
  private fill = h("div", { class: "sw-progress-fill" });
  private text = h("span", { class: "sw-progress-text" });
  private cancel: HTMLButtonElement;
  private shown: ProgressReport | null = null;

  constructor(private model: AnyModel) {
    this.cancel = button("cancel", "cancel", () => this.stop(), "stop this computation at its next pass and go back to the previous map");
    this.el.append(h("div", { class: "sw-progress-track" }, [this.fill]), this.text, this.cancel);
  }

  /** Shows the kernel's progress reports; returns the unsubscribe. */
  follow(el: HTMLElement): () => void {
    injectStyle(el, "sw-style-progress", CSS);
    const listener = (...args: unknown[]) => {
      const msg = args[0] as Partial<ProgressReport> | undefined;
      if (msg?.type === "progress") this.show(msg as ProgressReport);
    };
    this.model.on("msg:custom", listener);
    return () => this.model.off("msg:custom", listener);
  }

  show(report: ProgressReport): void {
    const before = this.shown;
    this.shown = nextShown(before, report);
    const now = this.shown;
    this.el.hidden = now === null;
    if (now === null) return;
    if (before?.id !== now.id) this.cancel.disabled = false; // a new computation: its own cancel
    const percent = Math.floor(100 * Math.min(1, Math.max(0, now.fraction)));
    this.fill.style.width = `${percent}%`;
    this.text.textContent = this.cancel.disabled ? "cancelling…" : progressText(now);
    this.el.setAttribute("aria-valuenow", String(percent));
    this.el.setAttribute("aria-valuetext", this.text.textContent);
    this.el.dataset.id = String(now.id);
    this.cancel.hidden = !now.cancellable;
  }

  private stop(): void {
    if (this.shown === null) return;
    this.model.send({ type: "cancel", id: this.shown.id });
    this.cancel.disabled = true;
    this.text.textContent = "cancelling…";
  }
}
