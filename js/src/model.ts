/** The slice of anywidget's model interface the widgets use, and helpers on it. */
import { decode, type WireArray } from "./decode";

export interface AnyModel {
  get(name: string): any;
  set(name: string, value: unknown): void;
  on(event: string, callback: (...args: unknown[]) => void): void;
  off(event: string, callback?: (...args: unknown[]) => void): void;
  save_changes(): void;
  send(content: unknown, callbacks?: unknown, buffers?: unknown[]): void;
}

export interface RenderProps {
  model: AnyModel;
  el: HTMLElement;
}

/** A decoded wire array with its metadata keys. */
export interface Tensor {
  values: Float32Array | Float64Array | Uint8Array | Int32Array;
  shape: number[];
  meta: Record<string, any>;
}

/** Decodes trait `name` (a wire dict or null). */
export function tensor(model: AnyModel, name: string): Tensor | null {
  const wire = model.get(name) as (WireArray & Record<string, any>) | null;
  if (!wire || !wire.data) return null;
  const { data, shape, dtype, scales, ...meta } = wire;
  return { values: decode({ data, shape, dtype, scales }), shape, meta };
}

/** Calls `callback` once (in a microtask) after any of `names` changed; returns the unsubscribe. */
export function onChanges(model: AnyModel, names: string[], callback: () => void): () => void {
  let queued = false;
  const handler = () => {
    if (queued) return;
    queued = true;
    queueMicrotask(() => {
      queued = false;
      callback();
    });
  };
  for (const n of names) model.on(`change:${n}`, handler);
  return () => names.forEach((n) => model.off(`change:${n}`, handler));
}

/** Sets traits and sends them to the kernel in one message. */
export function update(model: AnyModel, values: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(values)) model.set(k, v);
  model.save_changes();
}

/** Sets traits that ask the kernel for a new result (a target, a method, a sample …), numbered with
 *  a new `_request` when the widget has one: the kernel tags its answer with that number, and the
 *  view draws only the answer to its latest request. */
export function request(model: AnyModel, values: Record<string, unknown>): void {
  const latest = model.get("_request");
  update(model, typeof latest === "number" ? { ...values, _request: latest + 1 } : values);
}
