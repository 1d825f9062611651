/** The WeightInspector's own stylesheet (colours only through the shared --sw-* variables). */
export const INSPECTOR_CSS = `
.sw-wi-list .sw-bar{grid-template-columns:minmax(0,1fr) auto;row-gap:0}
.sw-wi-list .sw-bar-label{font-weight:inherit}
.sw-wi-meta{grid-column:1 / span 2;color:var(--sw-muted);font-size:11px;font-weight:400;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.sw-wi-list .sw-bar[aria-disabled=true]{opacity:.5;cursor:not-allowed}
.sw-wi-list .sw-bar[aria-disabled=true]:hover{background:none}
.sw-wi-eq{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:2px 16px;padding:6px 10px;background:var(--sw-soft);border-radius:6px;max-width:100%;overflow-x:auto}
.sw-wi-eq>math{display:block;white-space:nowrap;font-size:14px;text-align:left;margin:1px 0}
.sw-wi-eq[hidden]{display:none}
.sw-wi-prose{grid-column:1 / -1;color:var(--sw-muted);font-size:11.5px;line-height:1.5}
.sw-wi-prose math{font-size:12.5px}
.sw-wi-table{display:grid;gap:4px 6px;align-items:start;justify-content:start;max-width:100%}
.sw-wi-colhead{font-size:11.5px;line-height:1.25;min-width:0;overflow:hidden}
.sw-wi-colhead b{display:block;font-weight:600;hyphens:none;overflow-wrap:anywhere}
.sw-wi-colhead span{display:block;color:var(--sw-muted);font-size:10.5px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.sw-wi-rowhead{white-space:pre-line;font-size:11px;color:var(--sw-muted);text-align:right;align-self:center;line-height:1.2;min-width:0;overflow:hidden}
.sw-wi-table .sw-stage{cursor:zoom-in}
.sw-wi-caption{color:var(--sw-muted);font-size:11.5px}
.sw-wi-downsampled[hidden]{display:none}
.sw-wi-downsampled{display:inline-block;padding:1px 6px;border-radius:4px;background:var(--sw-accent-soft);color:var(--sw-accent);font-size:11.5px}
.sw-wi-zoom{display:flex;flex-direction:column;gap:4px;padding:6px 8px;border:1px solid var(--sw-line);border-radius:8px;max-width:100%}
.sw-wi-zoom[hidden]{display:none}
.sw-wi-zoom-head{display:flex;align-items:baseline;gap:8px;flex-wrap:wrap;font-size:11.5px}
.sw-wi-zoom-head .sw-btn{margin-left:auto}
.sw-wi-zoom .sw-stage{cursor:crosshair}
.sw-wi-legend{display:flex;align-items:flex-end;gap:8px 16px;flex-wrap:wrap}
.sw-wi-hist{width:120px;height:30px;display:block}
.sw-wi-legend .sw-colorbar .sw-note{display:none}
.sw-wi-about{color:var(--sw-muted);font-size:11.5px}
.sw-wi-about summary{cursor:pointer}
.sw-wi-about ul{margin:4px 0 0;padding-left:18px}
.sw-wi-mark{position:absolute;pointer-events:none;border:1.5px solid var(--sw-fg);box-shadow:0 0 0 1px var(--sw-bg)}
`;
