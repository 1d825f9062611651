/**
 * The widgets' stylesheet, scoped under .sw-root; injected once per root node (the document, or the
 * shadow root marimo mounts widgets in).
 *
 * Theme: the --sw-* variables follow the host — JupyterLab / Notebook 7 (--jp-*), VS Code (--vscode-*) —
 * and fall back to a light palette, or a dark one under prefers-color-scheme: dark. Secondary text is
 * mixed from the text and card colours (hosts' own secondary greys fall below 4.5:1 on tinted rows). Every other rule
 * (and the inspector's stylesheet) uses only --sw-* colours. Heatmap colours never change with the theme.
 */
const THEME_LIGHT = "--sw-fg-base:#1f2430;--sw-line-base:#d5dae2;--sw-bg-base:#ffffff;--sw-soft-base:#f2f4f7;--sw-accent-base:#2f63c9";
const THEME_DARK = "--sw-fg-base:#e6e8ec;--sw-line-base:#3a404b;--sw-bg-base:#1b1e24;--sw-soft-base:#262a32;--sw-accent-base:#7aa2f7";
const CSS = `
.sw-root{${THEME_LIGHT};
 --sw-fg:var(--jp-ui-font-color1,var(--vscode-editor-foreground,var(--sw-fg-base)));
 --sw-muted:color-mix(in srgb,var(--sw-fg) 76%,var(--sw-bg));
 --sw-line:var(--jp-border-color2,var(--vscode-widget-border,var(--sw-line-base)));
 --sw-bg:var(--jp-layout-color1,var(--vscode-editor-background,var(--sw-bg-base)));
 --sw-soft:var(--jp-layout-color2,var(--vscode-editorWidget-background,var(--sw-soft-base)));
 --sw-accent:var(--jp-brand-color1,var(--vscode-focusBorder,var(--sw-accent-base)));
 --sw-accent-soft:color-mix(in srgb,var(--sw-accent) 18%,var(--sw-bg));
 --sw-bar:color-mix(in srgb,var(--sw-accent) 45%,var(--sw-bg));
 --sw-outline:color-mix(in srgb,var(--sw-fg) 40%,transparent);
 position:relative;box-sizing:border-box;display:flex;flex-direction:column;gap:10px;padding:12px 14px;max-width:100%;
 font:12.5px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--sw-fg);
 background:var(--sw-bg);border:1px solid var(--sw-line);border-radius:10px;color-scheme:light}
@media (prefers-color-scheme:dark){.sw-root{${THEME_DARK};color-scheme:dark}}
.sw-root :focus-visible{outline:2px solid var(--sw-accent);outline-offset:1px}
.sw-root *{box-sizing:border-box}
.sw-head{display:flex;align-items:baseline;gap:10px;flex-wrap:wrap}
.sw-title{font-weight:600;font-size:13.5px}
.sw-sub{color:var(--sw-muted)}
.sw-verdict{margin-left:auto;color:var(--sw-fg);font-weight:500}
.sw-toolbar{display:flex;align-items:center;gap:6px 14px;flex-wrap:wrap;padding:6px 8px;background:var(--sw-soft);border-radius:8px}
.sw-field{display:inline-flex;align-items:center;gap:5px;color:var(--sw-muted)}
.sw-root select{max-width:170px}
.sw-root select,.sw-root input[type=number],.sw-root input[type=search]{font:inherit;color:var(--sw-fg);background:var(--sw-bg);border:1px solid var(--sw-line);border-radius:6px;padding:2px 6px;height:24px}
.sw-root input[type=number]{width:44px}
.sw-root input[type=range]{width:70px;accent-color:var(--sw-accent)}
.sw-btn{font:inherit;color:var(--sw-fg);background:var(--sw-bg);border:1px solid var(--sw-line);border-radius:6px;padding:2px 8px;height:24px;cursor:pointer}
.sw-btn:hover{border-color:var(--sw-accent)}
.sw-btn[aria-pressed=true]{background:var(--sw-accent-soft);border-color:var(--sw-accent)}
.sw-spacer{flex:1}
.sw-exports{display:inline-flex;gap:6px;white-space:nowrap}
.sw-body{display:flex;gap:18px;align-items:flex-start;flex-wrap:wrap}
.sw-panel{display:flex;flex-direction:column;gap:6px;min-width:220px;max-width:300px;flex:0 1 280px}
.sw-panel-head{display:flex;align-items:center;gap:6px;font-weight:600}
.sw-panel-head .sw-sub{font-weight:400}
.sw-list{display:flex;flex-direction:column;gap:1px;max-height:340px;overflow-y:auto;padding-right:2px}
.sw-bar{display:grid;grid-template-columns:var(--sw-label-w,minmax(40px,92px)) minmax(60px,1fr) 66px;align-items:center;gap:6px;padding:2px 4px;border-radius:5px;border:1px solid transparent}
.sw-bar[role=button]{cursor:pointer}
.sw-bar[role=button]:hover{background:var(--sw-soft)}
.sw-bar[aria-pressed=true]{background:var(--sw-accent-soft);border-color:var(--sw-accent);font-weight:600}
.sw-bar-label{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.sw-bar-track{position:relative;height:10px;background:var(--sw-soft);border-radius:3px}
.sw-bar-fill{position:absolute;top:0;bottom:0;border-radius:3px;background:var(--sw-bar);box-shadow:inset 0 0 0 1px rgba(127,127,127,.35)}
.sw-bar[aria-pressed=true] .sw-bar-fill{background:var(--sw-accent)}
.sw-bar.sw-versus{border:1px dashed var(--sw-muted)}
.sw-bar.sw-versus .sw-bar-label::before{content:"vs ";font-weight:600}
.sw-bar-zero{position:absolute;top:-2px;bottom:-2px;width:1px;background:var(--sw-muted)}
.sw-bar-value{text-align:right;font-variant-numeric:tabular-nums;color:var(--sw-muted)}
.sw-ellipsis{overflow:hidden;text-overflow:ellipsis;white-space:nowrap;max-width:45%}
.sw-features{max-height:420px}
.sw-note{color:var(--sw-muted);font-size:11.5px}
.sw-colorbar .sw-ellipsis{overflow:hidden;text-overflow:ellipsis;white-space:nowrap;max-width:45%}
.sw-features{max-height:420px}
.sw-note{white-space:nowrap}
.sw-view{display:flex;flex-direction:column;gap:8px;min-width:0;flex:1 1 320px}
.sw-stage{position:relative;display:inline-block;width:fit-content;justify-self:start;line-height:0;align-self:flex-start;border-radius:4px;overflow:hidden;box-shadow:0 0 0 1px var(--sw-outline)}
.sw-stage canvas{image-rendering:pixelated;display:block}
.sw-stage canvas+canvas{position:absolute;left:0;top:0}
.sw-stale{opacity:.45;transition:opacity .15s}
.sw-status{display:none;align-items:center;gap:6px;color:var(--sw-fg)}
.sw-status[data-busy=true]{display:inline-flex}
.sw-status::before{content:"";width:10px;height:10px;border:2px solid var(--sw-accent-soft);border-top-color:var(--sw-accent);border-radius:50%;animation:sw-spin .8s linear infinite}
@keyframes sw-spin{to{transform:rotate(360deg)}}
.sw-error{display:flex;gap:8px;align-items:flex-start;padding:6px 10px;border-radius:6px;background:color-mix(in srgb,#d32f2f 14%,var(--sw-bg));color:var(--sw-fg);border:1px solid #d32f2f;white-space:pre-wrap}
.sw-error[hidden]{display:none}
.sw-error button{margin-left:auto;background:none;border:0;color:inherit;cursor:pointer;font-size:14px;line-height:1}
.sw-colorbar{display:grid;grid-template-columns:200px;gap:2px}
.sw-colorbar canvas{width:200px;height:10px;image-rendering:auto;border-radius:2px;box-shadow:0 0 0 1px var(--sw-outline)}
.sw-ticks{position:relative;height:14px;font-size:11px;color:var(--sw-muted);font-variant-numeric:tabular-nums}
.sw-ticks span{position:absolute;transform:translateX(-50%);white-space:nowrap}
.sw-ticks span:first-child{transform:none}.sw-ticks span:last-child{transform:translateX(-100%)}
.sw-legend{display:flex;align-items:flex-end;gap:14px;flex-wrap:wrap}
.sw-colorbar[hidden]{display:none}
.sw-zero{display:block;max-width:560px;padding:6px 10px;border-radius:6px;background:var(--sw-soft);border:1px solid var(--sw-line);border-left:3px solid var(--sw-muted);color:var(--sw-fg);line-height:1.45;white-space:normal}
.sw-zero strong{font-weight:600}
.sw-zero[hidden]{display:none}
.sw-tooltip{position:absolute;pointer-events:none;z-index:10;background:rgba(31,36,48,.94);color:#fff;padding:4px 7px;border-radius:5px;font-size:11.5px;line-height:1.35;white-space:pre;display:none;font-variant-numeric:tabular-nums}
.sw-axis{display:flex;color:var(--sw-muted);font-size:11px}
.sw-rowlabels{display:flex;max-width:160px;flex-direction:column;justify-content:stretch;text-align:right;padding-right:6px}
.sw-rowlabels>div{display:flex;align-items:center;justify-content:flex-end;white-space:nowrap;overflow:hidden;border-radius:3px;padding:0 4px;cursor:pointer}
.sw-rowlabels>div[aria-pressed=true]{background:var(--sw-accent-soft);color:var(--sw-fg);font-weight:600}
.sw-collabels{position:relative;height:46px;flex:none}
.sw-collabels span{position:absolute;top:2px;transform-origin:0 0;white-space:nowrap;font-size:10.5px;color:var(--sw-muted)}
.sw-matrix-view{display:flex;flex-direction:column;gap:4px;min-width:0;max-width:100%}
.sw-scroller{position:relative;overflow-y:auto;overflow-x:auto;max-width:100%;align-self:flex-start;border-radius:4px}
.sw-scroll-inner{position:relative}
.sw-scroll-inner canvas{position:absolute;top:0;image-rendering:pixelated;box-shadow:0 0 0 1px var(--sw-outline)}
.sw-vlabels{position:absolute;left:0;top:0;bottom:0;padding:0;max-width:none;display:block}
.sw-vlabels>div{position:absolute;left:0;right:4px;display:block;text-align:right;overflow:hidden;text-overflow:ellipsis;white-space:nowrap;padding:0 4px}
.sw-finder{flex-wrap:wrap;font-weight:400;gap:6px 12px}
.sw-zoom{font-weight:400}
.sw-zoom .sw-btn{min-width:28px}
.sw-bar[aria-current=true]{background:var(--sw-accent-soft);border-color:var(--sw-accent);font-weight:600}
.sw-tiles{display:flex;flex-direction:column;gap:4px;min-width:0}
.sw-matrix{display:grid;grid-template-columns:max-content max-content;align-items:start;justify-content:start}
.sw-mark{position:absolute;pointer-events:none;box-shadow:0 0 0 1.5px #111,0 0 0 3px rgba(255,255,255,.8)}
.sw-grid{display:grid;gap:8px;min-width:0;max-height:520px;overflow-y:auto}
.sw-tile{display:flex;flex-direction:column;gap:2px;align-items:center;min-width:0;padding:3px;border-radius:6px;border:1px solid transparent;cursor:pointer;line-height:1.2}
.sw-tile:hover{background:var(--sw-soft)}
.sw-tile[aria-pressed=true]{border-color:var(--sw-accent);background:var(--sw-accent-soft)}
.sw-tile .sw-stage{align-self:center}
.sw-tile-label{font-size:11px;max-width:100%;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.sw-root input[data-sw-action=index]{width:calc(5ch + 32px);font-variant-numeric:tabular-nums}
.sw-main{display:flex;flex-direction:column;gap:6px;min-width:0}
.sw-pane{position:relative;display:inline-block;line-height:0;border-radius:4px;overflow:hidden;box-shadow:0 0 0 1px var(--sw-outline)}
.sw-pane canvas{image-rendering:pixelated;display:block}
.sw-pane canvas+canvas{position:absolute;left:0;top:0}
.sw-main[hidden],.sw-methods[hidden],.sw-figure[hidden],.sw-signal[hidden],.sw-topk[hidden],.sw-colorbar-target[hidden]{display:none}
.sw-panels{display:flex;gap:12px;align-items:flex-start;min-width:0}
.sw-panels>[data-sw-panel=input]{order:1}.sw-panels>[data-sw-panel=map]{order:2}.sw-panels>[data-sw-panel=overlay]{order:3}
.sw-figure{margin:0;display:flex;flex-direction:column;gap:4px;align-items:flex-start;flex:none;line-height:1.3}
.sw-figure>figcaption,.sw-figure>.sw-tile-label{font-size:11.5px;color:var(--sw-muted);width:0;min-width:100%;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.sw-methods-row{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}
.sw-methods-stack{display:flex;flex-direction:column;gap:6px;align-items:flex-start}
.sw-method{cursor:pointer;padding:3px;border-radius:6px;border:1px solid transparent}
.sw-method:hover{background:var(--sw-soft)}
.sw-method[aria-pressed=true]{border-color:var(--sw-accent);background:var(--sw-accent-soft)}
.sw-method[aria-pressed=true]>.sw-tile-label{color:var(--sw-fg);font-weight:600}
.sw-method .sw-tokens{max-width:100%}
.sw-topk{display:flex;flex-direction:column;gap:2px;font-variant-numeric:tabular-nums;line-height:1.4}
.sw-topk>div{padding-left:14px;text-indent:-14px}
.sw-topk>[data-sw-topk=up]::before{content:"▲";display:inline-block;width:14px;text-indent:0;color:#c0392b}
.sw-topk>[data-sw-topk=down]::before{content:"▼";display:inline-block;width:14px;text-indent:0;color:#2f6fc1}
.sw-signal{display:flex;flex-direction:column;gap:3px;margin-bottom:4px}
.sw-signal svg{display:block;background:var(--sw-soft);border-radius:3px;box-shadow:0 0 0 1px var(--sw-outline)}
.sw-signal canvas{display:block;image-rendering:pixelated;border-radius:3px}
.sw-signal-key{display:flex;flex-wrap:wrap;gap:2px 12px;font-size:11px;color:var(--sw-muted)}
.sw-signal-key i{display:inline-block;width:12px;height:3px;margin-right:5px;vertical-align:middle;border-radius:2px}
.sw-colorbar{grid-template-columns:minmax(200px,max-content)}
.sw-colorbar .sw-ticks{width:200px}
.sw-colorbar-target{color:var(--sw-fg);font-weight:500;margin-bottom:2px}
.sw-colorbar>.sw-note,.sw-colorbar-target{white-space:normal;max-width:560px}
`;

/** Adds a stylesheet (the shared one by default) once per id to the root node `el` lives in:
 *  its shadow root when it has one (marimo), else the document's head. */
export function injectStyle(el: HTMLElement, id = "sw-style", css = CSS): void {
  const root = el.getRootNode();
  const shadow = typeof ShadowRoot !== "undefined" && root instanceof ShadowRoot ? root : null;
  const doc = el.ownerDocument;
  if ((shadow ?? doc).getElementById(id)) return;
  const style = doc.createElement("style");
  style.id = id;
  style.textContent = css;
  (shadow ?? doc.head).append(style);
}

/** "dark" when `color` (a computed CSS colour: rgb(), rgba() or color(srgb …)) is dark, else "light";
 *  null when it cannot be read or is transparent. */
export function schemeOf(color: string): "light" | "dark" | null {
  const srgb = color.match(/color\(srgb ([\d.]+) ([\d.]+) ([\d.]+)(?: \/ ([\d.]+))?/);
  const rgb = color.match(/rgba?\(([\d.]+)[ ,]+([\d.]+)[ ,]+([\d.]+)(?:[ ,/]+([\d.]+))?/);
  const m = srgb ?? rgb;
  if (!m || (m[4] !== undefined && Number(m[4]) === 0)) return null;
  const k = srgb ? 255 : 1;
  const lum = k * (0.2126 * Number(m[1]) + 0.7152 * Number(m[2]) + 0.0722 * Number(m[3]));
  return lum < 128 ? "dark" : "light";
}
