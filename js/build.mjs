// Bundles one ES module per widget into ../saliency_widgets/static/.
// Everything is inlined: notebooks may be offline, so no CDN imports at run time.
import { build } from "esbuild";

const widgets = ["saliency_map", "jacobian_grid", "weight_inspector", "generation_map", "dataset_map"];

await build({
  entryPoints: widgets.map((name) => `src/${name}.ts`),
  outdir: "../saliency_widgets/static",
  bundle: true,
  format: "esm",
  target: "es2020",
  minify: true,
  logLevel: "warning",
});
