/** The chrome the widgets share: header (with the progress of a slow kernel computation), toolbar, colour
 *  scale controls, errors, and the note of what needs a kernel in an offline page. */
import { scaleMax, shownSign, SIGNS, type Sign } from "./colors";
import { ColorBar } from "./colorbar";
import { button, ErrorBox, field, KERNEL_CSS, KernelOnly, OFFLINE_PAGE, SampleStepper, select, statusBadge, type NoKernel } from "./controls";
import { decode } from "./decode";
import { h } from "./dom";
import { Tooltip } from "./heatmap";
import { request, update, type AnyModel } from "./model";
import { ProgressBar } from "./progress";
import { injectStyle, schemeOf } from "./style";

const SIGN_OPTIONS: [string, string][] = [
  ["all", "signed"],
  ["positive", "positive"],
  ["negative", "negative"],
  ["absolute_value", "absolute"],
];

export class Frame {
  readonly root: HTMLElement;
  readonly title = h("span", { class: "sw-title" });
  /** The header line: title, subtitle, status (widgets may append). */
  readonly head: HTMLElement;
  readonly sub = h("span", { class: "sw-sub" });
  readonly status = statusBadge();
  readonly toolbar = h("div", { class: "sw-toolbar", role: "toolbar" });
  readonly errors = new ErrorBox();
  /** The progress of the kernel's slow computation, with its cancel button (data-sw-role="progress"). */
  readonly progress: ProgressBar;
  /** Controls that need a kernel: disabled in an offline page, listed in its note (data-sw-role="offline-note"). */
  readonly kernel: KernelOnly;
  readonly body = h("div", { class: "sw-body" });
  readonly colorbar = new ColorBar();
  readonly tooltip: Tooltip;
  /** The colour scale magnitude of the last drawing (what "lock" freezes). */
  lastM = 1;
  /** Whether the map drawn is ≥ 0 by construction (Grad-CAM): a signed view of it is drawn one-sided. */
  nonnegative = false;
  private stepper: SampleStepper;
  private sign: HTMLSelectElement;
  private lock: HTMLButtonElement;

  /** `noKernel`: why no kernel answers this view (default: in an offline page), or null when one does. */
  constructor(private model: AnyModel, el: HTMLElement, widget: string, noKernel: NoKernel | null = model.get("_offline") ? OFFLINE_PAGE : null) {
    injectStyle(el);
    injectStyle(el, "sw-style-kernel", KERNEL_CSS);
    this.root = h("div", { class: "sw-root", "data-sw-widget": widget });
    this.tooltip = new Tooltip(this.root);
    this.stepper = new SampleStepper((i) => request(model, { index: i }));
    this.sign = select("colour scale sign", "sign", SIGN_OPTIONS, (v) => update(model, { sign: v }));
    this.lock = button("lock scale", "lock-scale", () => this.toggleLock(), "keep this colour scale across outputs, samples and methods");
    this.progress = new ProgressBar(model);
    this.head = h("div", { class: "sw-head" }, [this.title, this.sub, this.status, this.progress.el]);
    this.root.append(this.head, this.toolbar, this.errors.el, this.body);
    this.kernel = new KernelOnly(noKernel, (note) => this.toolbar.after(note));
    for (const what of (model.get("_page_needs") ?? []) as string[]) this.kernel.need(what);
    const pageNote = model.get("_page_note");
    if (pageNote) this.kernel.say(String(pageNote), true);
    el.replaceChildren(this.root);
    this.watchTheme(el.ownerDocument);
    this.unfollowErrors = this.errors.follow(model);
    this.unfollowProgress = this.progress.follow(el);
  }

  /** Stops watching the host's theme and the kernel's errors and progress (call when the view is removed). */
  dispose(): void {
    this.unwatch();
    this.unfollowErrors();
    this.unfollowProgress();
  }

  /** The toolbar's common controls, after widget-specific ones. */
  commonControls(): HTMLElement[] {
    return [this.stepper.el, field("show", this.sign), this.lock];
  }

  get signValue(): Sign {
    const s = this.model.get("sign");
    return (SIGNS as readonly string[]).includes(s) ? (s as Sign) : "all";
  }

  /** The sign the map is drawn with: `signValue`, one-sided for a map that is ≥ 0 by construction. */
  get shownSign(): Sign {
    return shownSign(this.signValue, this.nonnegative);
  }

  /** The LUT of the sign the map is drawn with. */
  lut(): Uint8Array {
    const wire = this.model.get("_luts")[this.shownSign];
    return decode(wire) as Uint8Array;
  }

  /** The colour scale magnitude for `values`: locked, or by the normalization rule. */
  scaleFor(values: ArrayLike<number>): number {
    const m = this.model.get("lock_scale") && this.model.get("scale_max") > 0
      ? Number(this.model.get("scale_max"))
      : scaleMax(values, this.shownSign, Number(this.model.get("outlier_perc")));
    this.lastM = m;
    return m;
  }

  /** Re-reads the common traits into the controls and the colour bar. */
  sync(batchSize: number): void {
    this.followScheme();
    this.stepper.update(Number(this.model.get("index") ?? 0), batchSize);
    if (batchSize > 1 && this.toolbar.contains(this.stepper.el)) this.kernel.need("other samples", ...this.stepper.controls);
    this.sign.value = this.signValue;
    this.lock.setAttribute("aria-pressed", String(Boolean(this.model.get("lock_scale"))));
    this.colorbar.update({
      lut: this.lut(),
      sign: this.shownSign,
      m: this.lastM,
      outlierPerc: Number(this.model.get("outlier_perc")),
      locked: Boolean(this.model.get("lock_scale")),
      nonnegative: this.shownSign !== this.signValue,
    });
  }

  /** Native controls (selects, scroll bars) follow the host's light or dark background. */
  private unwatch: () => void = () => {};
  private unfollowErrors: () => void;
  private unfollowProgress: () => void;

  /** Re-reads the host background when its theme switches (JupyterLab's data-jp-theme-light, class or
   *  data-theme attributes on <html>/<body>, the OS colour scheme); once now and once after the new
   *  theme's stylesheet has had time to load. */
  private watchTheme(doc: Document): void {
    const check = () => {
      requestAnimationFrame(() => this.followScheme());
      setTimeout(() => this.followScheme(), 800);
    };
    const observer = new MutationObserver(check);
    for (const node of [doc.documentElement, doc.body]) {
      if (node) observer.observe(node, { attributes: true, attributeFilter: ["class", "data-theme", "data-jp-theme-light", "data-jp-theme-name"] });
    }
    const media = doc.defaultView?.matchMedia?.("(prefers-color-scheme: dark)");
    media?.addEventListener("change", check);
    check();
    this.unwatch = () => {
      observer.disconnect();
      media?.removeEventListener("change", check);
    };
  }

  private followScheme(): void {
    if (!this.root.isConnected) return;
    const scheme = schemeOf(getComputedStyle(this.root).backgroundColor);
    if (scheme && this.root.style.colorScheme !== scheme) this.root.style.colorScheme = scheme;
  }

  setBusy(busy: boolean, stage: HTMLElement): void {
    this.status.dataset.busy = String(busy);
    stage.classList.toggle("sw-stale", busy);
  }

  private toggleLock(): void {
    if (this.model.get("lock_scale")) update(this.model, { lock_scale: false, scale_max: 0 });
    else update(this.model, { lock_scale: true, scale_max: this.lastM });
  }
}

/** Traits every frame re-reads on change. */
export const FRAME_TRAITS = ["index", "sign", "outlier_perc", "lock_scale", "scale_max", "_luts", "_scores", "_labels"];
