import { decode } from "./decode";

/** anywidget entry point (placeholder until the widget issue lands). */
export default {
  render({ el }: { el: HTMLElement }) {
    el.dataset.swWidget = "weight-inspector";
    el.textContent = typeof decode === "function" ? "saliency_widgets" : "";
  },
};
