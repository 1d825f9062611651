/** anywidget entry of DatasetMap: the class means, a virtualised gallery of samples, and the opened sample's map. */
import { ClassMeans, type MeansData } from "./class_means";
import { button, field, select } from "./controls";
import { decode, type WireArray } from "./decode";
import type { Sign } from "./colors";
import { h } from "./dom";
import { formatValue } from "./format";
import { figureExports } from "./exporting";
import { Frame, FRAME_TRAITS } from "./frame";
import { Gallery, GALLERY_CSS } from "./gallery";
import { Heatmap, type Tooltip } from "./heatmap";
import { MapView, mapGrid, type MapLayout } from "./mapview";
import { onChanges, tensor, update, type RenderProps } from "./model";
import { injectStyle } from "./style";
import type { PageMeta } from "./thumbs";

const SORTS: [string, string][] = [["index", "data order"], ["confidence", "confidence"], ["margin", "margin"], ["magnitude", "map magnitude"]];
/** About this many pixels on the long side of an opened image map (nearest-neighbour integer zoom). */
const DETAIL_SIZE = 224;

type Wire = WireArray & Record<string, unknown>;

interface Detail {
  index: number;
  pred: number;
  true: number | null;
  map: Wire;
  picture: Wire | null;
  input: Wire | null;
}

interface PageWire extends PageMeta {
  maps: Wire;
  inputs: Wire | null;
}

/** A page of thumbnails as uint8 arrays: from a trait (its arrays hold their bytes) or a message (bytes in buffers). */
function pageBytes(spec: { shape: number[]; dtype: string; data?: unknown } | null, buffer?: unknown): Uint8Array | null {
  if (!spec) return null;
  return decode({ data: (spec.data ?? buffer) as WireArray["data"], shape: spec.shape, dtype: spec.dtype }) as Uint8Array;
}

/** The opened sample: for images its input in colour and its map beside the SaliencyMap's overlay view
 *  (MapView), for vectors and sequences MapView alone. */
class SampleDetail {
  readonly el = h("div", { class: "sw-dm-section", "data-sw-role": "detail" });
  readonly view: MapView;
  private head = h("div", { class: "sw-dm-head" });
  private title = h("span", {});
  private verdict = h("span", { class: "sw-sub" });
  private row = h("div", { class: "sw-detail" });
  private picture: Heatmap | null = null;
  private plain: Heatmap | null = null;
  private values: Float32Array = new Float32Array(0);
  private hint = h("div", { class: "sw-note" }, "Click a sample to open its map here; arrow keys move through the gallery.");
  shown = -1;

  constructor(private layout: MapLayout, names: string[], tooltip: Tooltip, legend: HTMLElement, close: () => void) {
    this.view = new MapView(layout, names, tooltip);
    const closer = button("close", "close-sample", close, "close this sample");
    this.head.append(this.title, this.verdict, h("span", { class: "sw-spacer" }), closer);
    if (layout.kind === "image") {
      const { rows, cols } = mapGrid(layout);
      const zoom = Math.max(1, Math.floor(DETAIL_SIZE / Math.max(rows, cols)));
      const [width, height] = [cols * zoom, rows * zoom];
      this.picture = new Heatmap({ "data-sw-role": "input-picture", role: "img", "aria-label": "input" });
      this.plain = new Heatmap({ "data-sw-role": "detail-map", role: "img", "aria-label": "attribution map" });
      for (const canvas of [this.picture.canvas, this.plain.canvas, ...Array.from(this.view.stage.querySelectorAll("canvas"))]) {
        Object.assign(canvas.style, { width: `${width}px`, height: `${height}px` });
      }
      const plain = this.plain;
      plain.canvas.addEventListener("mousemove", (ev) => {
        const cell = plain.cellFromEvent(ev);
        if (cell) tooltip.show(`pixel (${cell.row}, ${cell.col})\nattribution ${formatValue(this.values[cell.row * cols + cell.col])}`, ev);
      });
      plain.canvas.addEventListener("mouseleave", () => tooltip.hide());
      const panel = (caption: string, canvas: HTMLCanvasElement) => h("div", { class: "sw-detail-pic" }, [h("span", { class: "sw-note" }, caption), canvas]);
      this.row.append(panel("input", this.picture.canvas), panel("map", this.plain.canvas));
      this.view.el.prepend(h("span", { class: "sw-note" }, "over the input"));
    }
    this.row.append(this.view.el);
    this.el.append(this.head, this.row, legend, this.hint);
    this.clear();
  }

  clear(): void {
    this.shown = -1;
    for (const part of [this.head, this.row]) part.hidden = true;
    this.hint.hidden = false;
  }

  /** Draws sample `d`: `label` names classes; `scale` gives the colour scale's sign, magnitude and LUT. */
  show(d: Detail, label: (c: number) => string, scale: (values: Float32Array) => { sign: Sign; m: number; lut: Uint8Array }): void {
    this.shown = d.index;
    for (const part of [this.head, this.row]) part.hidden = false;
    this.hint.hidden = true;
    const values = Float32Array.from(decode(d.map));
    this.values = values;
    const { sign, m, lut } = scale(values);
    const { rows, cols, at } = mapGrid(this.layout);
    const picture = d.picture ? (decode(d.picture) as Uint8Array) : null;
    if (picture) {
      this.picture?.paintRGB(picture, rows, cols, 3);
      this.view.setImage(picture, 3);
    }
    this.plain?.draw(values, rows, cols, sign, m, lut, { at });
    this.view.draw(values, sign, m, lut, this.layout.kind === "vector" && d.input ? decode(d.input) : null);
    const wrong = d.true !== null && d.true !== d.pred;
    this.title.textContent = `Sample #${d.index}`;
    this.verdict.textContent = `predicted “${label(d.pred)}”` + (d.true === null ? "" : ` · true “${label(d.true)}” ${wrong ? "✗ mistake" : "✓"}`);
    this.view.describeAs(`map of sample ${d.index}`);
  }
}

function render({ model, el }: RenderProps): () => void {
  const frame = new Frame(model, el, "dataset-map");
  injectStyle(el, "sw-gallery-style", GALLERY_CSS);
  const layout = model.get("_layout") as MapLayout;
  const offline = Boolean(model.get("_offline"));
  const labels = model.get("_labels") as string[];
  const label = (c: number) => labels[c] ?? String(c);
  const classes = model.get("_classes") as { true: number[]; predicted: number[] };
  const hasLabels = Boolean(model.get("_has_labels"));
  const n = Number(model.get("_n_total"));
  frame.nonnegative = Boolean(model.get("_nonnegative"));

  const classOptions = (list: number[]): [string, string][] => [["", "all"], ...list.map((c): [string, string] => [String(c), label(c)])];
  const pickClass = (name: string) => (v: string) => update(model, { [name]: v === "" ? null : Number(v) });
  const klass = select("true class", "klass", classOptions(classes.true), pickClass("klass"));
  const predicted = select("predicted class", "predicted", classOptions(classes.predicted), pickClass("predicted"));
  const mistakes = button("mistakes only", "mistakes-only", () => update(model, { mistakes_only: !model.get("mistakes_only") }), "list only the samples predicted wrongly");
  const sort = select("sort by", "sort", SORTS, (v) => update(model, { sort: v }));
  const order = button("↓", "ascending", () => update(model, { ascending: !model.get("ascending") }), "largest first (↓) or smallest first (↑)");
  const [, signField, lock] = frame.commonControls();

  const meansData = tensor(model, "_means");
  const meta = meansData?.meta ?? { by: "prediction", classes: [], counts: [] };
  const meansBy = String(meta.by);
  const filterName = meansBy === "label" ? "klass" : "predicted";
  const means = new ClassMeans(layout, { by: meansBy, classes: meta.classes, counts: meta.counts, values: Float32Array.from(meansData?.values ?? []) }, label, (c) => {
    if (!offline) update(model, { [filterName]: model.get(filterName) === c ? null : c });
  });
  let requestId = 0;
  const geo = model.get("_thumb") as { rows: number; cols: number; channels: number; page: number };
  const gallery = new Gallery({
    geometry: { rows: geo.rows, cols: geo.cols, channels: geo.channels },
    sideBySide: layout.kind === "image",
    pageSize: geo.page,
    offline,
    label,
    pick: (i) => update(model, { selected: i }),
    request: (indices) => model.send({ type: "thumbs", id: ++requestId, indices }),
  });
  const detail = new SampleDetail(layout, model.get("_feature_names") as string[], frame.tooltip, frame.colorbar.el, () => update(model, { selected: null }));
  const exports = figureExports(model, () => {
    const open = detail.shown >= 0;
    return {
      title: frame.title.textContent ?? "",
      subtitle: open ? `sample #${detail.shown}` : "class means on one colour scale",
      name: `dataset-map-${model.get("_method")}`,
      map: open ? detail.view.compose(0.75) : means.compose(),
      colorbar: (open ? frame.colorbar.state : means.colorbar.state) as NonNullable<typeof frame.colorbar.state>,
    };
  }, (message) => frame.errors.show(message));

  if (hasLabels) frame.toolbar.append(field("true", klass));
  frame.toolbar.append(field("predicted", predicted));
  if (hasLabels) frame.toolbar.append(mistakes);
  frame.toolbar.append(field("sort", sort), order, signField, lock, h("span", { class: "sw-spacer" }), h("span", { class: "sw-exports" }, exports));
  const liveOnly = [klass, predicted, mistakes, sort, order, signField.querySelector("select")];
  if (offline) for (const c of liveOnly) c?.setAttribute("disabled", "");

  const count = h("span", { class: "sw-sub", "data-sw-role": "count" });
  const offlineNote = h("div", { class: "sw-dm-note", "data-sw-role": "offline-note", hidden: !offline });
  const meansHead = h("div", { class: "sw-dm-head" }, [`Class means`, h("span", { class: "sw-sub" }, `by ${meansBy === "label" ? "true class" : meansBy === "prediction" ? "predicted class" : "explained output"} · one colour scale · click to filter`)]);
  const column = h("div", { class: "sw-dm" }, [
    h("div", { class: "sw-dm-section" }, [meansHead, means.el, means.colorbar.el]),
    h("div", { class: "sw-dm-section" }, [h("div", { class: "sw-dm-head" }, ["Gallery", count, h("span", { class: "sw-note" }, "input · map on its own scale")]), offlineNote, gallery.el]),
    detail.el,
  ]);
  frame.body.append(column);
  const method = String(model.get("_method")).replace(/_/g, " ");
  frame.title.textContent = `${method[0].toUpperCase()}${method.slice(1)} maps of ${n.toLocaleString("en-US")} samples`;

  const onMessage = (...args: unknown[]) => {
    const msg = args[0] as (PageWire & { type?: string; error?: string }) | undefined;
    if (msg?.type !== "thumbs") return;
    const buffers = (args[1] ?? []) as unknown[];
    if (msg.error) return frame.errors.show(msg.error);
    gallery.ingest(msg, pageBytes(msg.maps, buffers[0]) as Uint8Array, pageBytes(msg.inputs, buffers[1]));
  };
  model.on("msg:custom", onMessage);

  let shownWire: unknown = null;
  let pageWire: unknown = null;
  const redraw = () => {
    const sign = frame.shownSign;
    const lut = frame.lut();
    const thumb = model.get("_thumb") as { key: string };
    const thumbSign = thumb.key.split("|")[0]; // the thumbnails' indices are of the kernel's key, until a new one comes
    gallery.setColours(decode(model.get("_luts")[thumbSign] ?? model.get("_luts")[sign]) as Uint8Array, thumb.key);
    const page = model.get("_first_page") as PageWire | null;
    if (page && page !== pageWire) {
      pageWire = page;
      gallery.ingest(page, pageBytes(page.maps) as Uint8Array, pageBytes(page.inputs));
    }
    const shown = model.get("_shown") as Wire | null;
    if (shown && shown !== shownWire) {
      shownWire = shown;
      const order = decode(shown) as Int32Array;
      const listed = offline ? order.subarray(0, page?.indices.length ?? 0) : order;
      gallery.setShown(listed);
      count.textContent = String(shown.text ?? `${order.length} samples`);
      offlineNote.textContent = `Offline page: the first ${listed.length.toLocaleString("en-US")} of the ${order.length.toLocaleString("en-US")} samples listed are embedded (click one to open its map); scrolling further, filters and sorting need a running kernel.`;
    } else gallery.render();
    const selected = model.get("selected") as number | null;
    gallery.select(selected ?? -1);
    means.draw(sign, Number(model.get("outlier_perc")), lut, frame.nonnegative && frame.signValue === "all");
    means.select(model.get(filterName) as number | null);
    klass.value = String(model.get("klass") ?? "");
    predicted.value = String(model.get("predicted") ?? "");
    mistakes.setAttribute("aria-pressed", String(Boolean(model.get("mistakes_only"))));
    sort.value = String(model.get("sort"));
    order.textContent = model.get("ascending") ? "↑" : "↓";
    const d = model.get("_detail") as Detail | null;
    const waiting = selected !== null && (!d || d.index !== selected);
    frame.setBusy(waiting, detail.view.stage);
    if (selected === null) detail.clear();
    else if (d && d.index === selected) {
      detail.show(d, label, (values) => ({ sign: frame.shownSign, m: frame.scaleFor(values), lut }));
    }
    frame.sync(1);
  };
  const stop = onChanges(model, [...FRAME_TRAITS, "klass", "predicted", "mistakes_only", "sort", "ascending", "selected", "_shown", "_first_page", "_thumb", "_detail"], redraw);
  redraw();
  return () => {
    stop();
    model.off("msg:custom", onMessage);
    gallery.dispose();
    frame.dispose();
  };
}

export default { render };
