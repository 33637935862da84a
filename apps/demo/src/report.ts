import { writeFileSync } from 'node:fs';
import type { DemoResults } from './results';
import { esc, groupedBars, heatmap, lineChart } from './svg-plots';

const pct = (x: number) => `${(100 * x).toFixed(0)}%`;

const STYLE = `body{font-family:system-ui,sans-serif;max-width:1100px;margin:24px auto;padding:0 16px;color:#222}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd}table{border-collapse:collapse;margin:8px 0}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f4f4f4}td.l,th.l{text-align:left}
.grid{display:flex;flex-wrap:wrap;gap:12px}.card{width:250px;font-size:12px;border:1px solid #ddd;padding:6px}.card img{width:120px;height:120px;image-rendering:pixelated}
.plots{display:flex;flex-wrap:wrap;gap:8px}.note{color:#555;font-size:13px}`;

function table(head: string[], rows: Array<Array<string | number | null>>): string {
  return `<table><tr>${head.map((h, i) => `<th class="${i ? '' : 'l'}">${esc(h)}</th>`).join('')}</tr>${rows
    .map((r) => `<tr>${r.map((c, i) => `<td class="${i ? '' : 'l'}">${c === null ? 'n/a (does not fit the LM)' : typeof c === 'number' ? pct(c) : esc(c)}</td>`).join('')}</tr>`)
    .join('')}</table>`;
}

/** The self-contained report: inline SVG plots and data-URI images, no network. */
export function renderReport(r: DemoResults): string {
  const layers = [...new Set(r.flamingo.gates.map((g) => g.layer))].sort((a, b) => a - b);
  const gateSeries = layers.flatMap((layer) => [
    { name: `layer ${layer} attn`, points: r.flamingo.gates.filter((g) => g.layer === layer).map((g) => [g.step, g.attn] as [number, number]) },
    { name: `layer ${layer} ff`, points: r.flamingo.gates.filter((g) => g.layer === layer).map((g) => [g.step, g.ff] as [number, number]), dashed: true },
  ]);
  const loss = (name: string, pts: Array<{ step: number; loss: number }>) => ({ name, points: pts.map((p) => [p.step, p.loss] as [number, number]) });
  const held = [
    ['Flamingo', r.flamingo.heldout],
    ['BLIP-2', r.blip2.heldout],
    ['MLP projector', r.baselines.mlp_projector],
    ['LM alone', r.baselines.lm_only],
  ] as const;
  const fs = r.few_shot;
  const fv = r.few_shot_vqa;
  const models = ['flamingo', 'blip2', 'lm_only'] as const;
  const modelName = { flamingo: 'Flamingo', blip2: 'BLIP-2', lm_only: 'LM alone' };
  const perQuery = r.qformer_probe.per_query;
  const cfg = r.configuration as Record<string, unknown>;
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>@vlm demo report</title><style>${STYLE}</style></head><body>
<h1>@vlm demo: frozen vision encoder + frozen LM, only the bridge trains</h1>
<p class="note">Encoder: ${esc(String(cfg.encoder))}. LM: ${esc(String(cfg.lm))}. Backend ${esc(String(cfg.backend))}${cfg.native ? ' with the native matMul' : ''}, seed ${esc(String(cfg.seed))}${cfg.quick ? ', <b>--quick</b> sizes' : ''}; ${r.seconds.toFixed(0)} s in all.</p>

<h2>Held-out accuracy (compositional split: colour–shape pairs never seen in training)</h2>
${table(['model', 'caption colour', 'caption shape', 'VQA'], held.map(([n, h]) => [n, h.caption_color, h.caption_shape, h.vqa]))}
${groupedBars(['caption colour', 'caption shape', 'VQA'], held.map(([n, h]) => ({ name: n, values: [h.caption_color, h.caption_shape, h.vqa] })), { title: 'Held-out accuracy', yLabel: 'accuracy', yMax: 1 })}

<h2>Training</h2>
<div class="plots">${lineChart([loss('Flamingo', r.flamingo.loss), loss('BLIP-2 stage 2/3', r.blip2.loss), loss('BLIP-2 stage 1 (ITC+ITM+ITG)', r.blip2.stage1_loss), loss('MLP projector', r.baselines.mlp_projector.loss)], { title: 'Loss (log scale)', xLabel: 'step', yLabel: 'loss', logY: true })}</div>
<p class="note">Trainable weights: Flamingo ${r.flamingo.trainable_parameters}, BLIP-2 ${r.blip2.trainable_parameters}, MLP projector ${r.baselines.mlp_projector.trainable_parameters}; training time ${r.flamingo.train_seconds.toFixed(0)} s, ${r.blip2.train_seconds.toFixed(0)} s, ${r.baselines.mlp_projector.train_seconds.toFixed(0)} s.</p>

<h2>Experiment 1: gate analysis (Flamingo)</h2>
<div class="plots">${lineChart(gateSeries, { title: 'tanh(α) per layer over training (solid: attention, dashed: feed-forward)', xLabel: 'step', yLabel: 'tanh(α)', width: 700 })}</div>
${groupedBars(r.flamingo.gate_contribution.map((c) => `layer ${c.layer}`), [{ name: 'attention', values: r.flamingo.gate_contribution.map((c) => c.attn) }, { name: 'feed-forward', values: r.flamingo.gate_contribution.map((c) => c.ff) }], { title: 'after training: ‖tanh(α)·update‖ / ‖hidden state‖ per layer (held-out captions)', yLabel: 'relative size' })}
<p class="note">tanh(α) alone understates the first layer: its hidden states are the token embeddings (norm ~1), the later layers' tens, so a small gate in front of a large update can change it as much.</p>
${table(['gates forced to 0', 'caption colour', 'caption shape'], [['none', r.flamingo.heldout.caption_color, r.flamingo.heldout.caption_shape], ...r.flamingo.gate_ablation.map((a) => [a.layer === 'all' ? 'all layers' : `layer ${a.layer}`, a.caption_color, a.caption_shape] as [string, number, number])])}

<h2>Experiment 2: Q-Former probe (${r.qformer_probe.query_cosine.length} queries, ${r.qformer_probe.images} held-out placements)</h2>
${queryViews(r)}
<div class="plots">${heatmap(r.qformer_probe.query_cosine, { title: 'cosine similarity between query outputs (mean over images)', label: 'queries' })}
${groupedBars(perQuery.map((q) => String(q.query)), ['color', 'shape', 'size', 'position'].map((a) => ({ name: a, values: perQuery.map((q) => q[a as 'color']) })), { title: 'per-query linear probe accuracy (held-out images)', yLabel: 'accuracy', yMax: 1, width: 1000 })}
${groupedBars(r.qformer_probe.across_images.map((_, i) => String(i)), [{ name: 'cosine across images', values: r.qformer_probe.across_images }], { title: 'how much each query changes across images (1 = ignores the image)', yLabel: 'mean cosine', yMax: 1, width: 1000 })}</div>
<p class="note">Chance: ${Object.entries(r.qformer_probe.chance).map(([k, v]) => `${k} ${pct(v)}`).join(', ')}.</p>

<h2>Experiment 3: few-shot</h2>
${table(['implied-task episodes', '0-shot', '2-shot', '4-shot'], models.map((m) => [modelName[m], fs[m]['0'], fs[m]['2'], fs[m]['4']]))}
${groupedBars(['0-shot', '2-shot', '4-shot'], models.map((m) => ({ name: modelName[m], values: [fs[m]['0'] ?? 0, fs[m]['2'] ?? 0, fs[m]['4'] ?? 0] })), { title: 'Held-out episodes whose task only the shots imply', yLabel: 'accuracy', yMax: 1 })}
${table(['held-out two-attribute tasks ("red star", "small star")', '0-shot', '2-shot', '4-shot'], models.map((m) => [modelName[m], r.few_shot_mixtures[m]['0'], r.few_shot_mixtures[m]['2'], r.few_shot_mixtures[m]['4']]))}
${table(['VQA with solved examples', '0', '2', '3'], models.map((m) => [modelName[m], fv[m]['0'], fv[m]['2'], fv[m]['3']]))}
${groupedBars(['0', '2', '3'], models.map((m) => ({ name: modelName[m], values: [fv[m]['0'] ?? 0, fv[m]['2'] ?? 0, fv[m]['3'] ?? 0] })), { title: 'VQA on held-out scenes with 0/2/3 example image–answer pairs', yLabel: 'accuracy', yMax: 1 })}

<h2>BLIP-2 stage-1 retrieval (held-out scenes)</h2>
${table(['direction', 'recall@1'], [['image → text', r.blip2.retrieval.i2t_r1], ['text → image', r.blip2.retrieval.t2i_r1]])}

<h2>Samples (held-out scenes)</h2>
<div class="grid">${r.samples
    .map(
      (s) => `<div class="card"><img src="${s.image}" alt="scene"><div><b>truth:</b> ${esc(s.truth)}</div>
<div><b>Flamingo:</b> ${esc(s.flamingo.caption)}</div><div><b>BLIP-2:</b> ${esc(s.blip2.caption)}</div><div><b>MLP:</b> ${esc(s.mlp_projector.caption)}</div><div><b>LM alone:</b> ${esc(s.lm_only.caption)}</div>
<div><i>${esc(s.question)}</i> (${esc(s.answer)})</div><div>Flamingo: ${esc(s.flamingo.answer)} · BLIP-2: ${esc(s.blip2.answer)} · MLP: ${esc(s.mlp_projector.answer)} · LM: ${esc(s.lm_only.answer)}</div></div>`,
    )
    .join('')}</div>
<h2>Configuration</h2><pre>${esc(JSON.stringify(r.configuration, null, 1))}</pre>
</body></html>`;
  return html;
}

export function writeReport(path: string, r: DemoResults): void {
  writeFileSync(path, renderReport(r));
}

/** Which view each group of queries reads, when the Q-Former splits its queries among the encoder's views. */
function queryViews(r: DemoResults): string {
  const frames = r.configuration.blip2_frames as { framesPerImage: number; splitQueries: boolean; views: string[] } | undefined;
  if (!frames?.splitQueries || frames.framesPerImage < 2) return '';
  const group = r.qformer_probe.query_cosine.length / frames.framesPerImage;
  return `<p class="note">The queries are split among the encoder's views: ${frames.views.map((v, f) => `queries ${f * group}–${(f + 1) * group - 1} read only the ${esc(v)} view`).join(', ')}.</p>`;
}
