/** The lines `twinscope run` and `twinscope embed` print about trajectory embeddings. */
import { widthRatios } from '../measure/inpca.js';
import { cumulativeExplained, type RunEmbedding } from '../results/embedding.js';
import type { EmbeddedGroup } from '../results/groups.js';
import { formatPercent } from '../util/format.js';

/** One line per kept axis: eigenvalue and the explained stress (InPCA) or variance (PCA) so far. */
export function formatEmbedding(e: RunEmbedding): string[] {
  const explained = cumulativeExplained(e);
  return e.eigenvalues.map((lambda, k) => {
    const share = formatPercent(explained[k] ?? 0);
    const value = `λ${k + 1} = ${lambda.toPrecision(4)}`;
    if (e.explainedStress) {
      const sign = lambda < 0 ? 'time-like' : 'space-like';
      return `top ${k + 1} axes: explained stress ${share}  (${value}, ${sign})`;
    }
    return `top ${k + 1} axes: explained variance ${share}  (${value})`;
  });
}

/** One line per group: its values, the explained stress (or variance) of its top axes and its width ratios. */
export function formatGroups(groups: readonly EmbeddedGroup[]): string[] {
  return groups.map(({ group, embedding }) => {
    const values = Object.entries(group.values)
      .map(([f, v]) => `${f}=${JSON.stringify(v)}`)
      .join(' ');
    const what = embedding.explainedStress ? 'stress' : 'variance';
    const explained = cumulativeExplained(embedding)
      .map((v) => formatPercent(v))
      .join('/');
    const ratios = widthRatios(embedding.eigenvalues).map((r) => r.toPrecision(3));
    const widths = ratios.length > 0 ? `; |λk+1|/|λk| ${ratios.join(', ')}` : '';
    return `${group.name} (${values}): ${what} ${explained}${widths}`;
  });
}
