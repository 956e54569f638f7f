import { errorsIndexPattern, predictionsIndexPattern } from './predictions-index.ts';

/**
 * Saved objects for OpenSearch Dashboards (2.x; Kibana 7.10 reads the same format) over the index sink's indices:
 * two index patterns (predictions, error records), seven visualizations and a dashboard. Written to deploy/opensearch/dashboards.ndjson by
 * `node scripts/deploy/dashboards.ts`; import with Dashboards Management → Saved objects → Import, or
 * `curl -XPOST 'http://dashboards:5601/api/saved_objects/_import?overwrite=true' -H 'osd-xsrf: true'
 *  --form file=@deploy/opensearch/dashboards.ndjson`. A test checks that every field they use is mapped.
 */

interface SavedObject {
  id: string;
  type: 'index-pattern' | 'visualization' | 'dashboard';
  attributes: Record<string, unknown>;
  references: { name: string; type: string; id: string }[];
  migrationVersion?: Record<string, string>;
}

export interface Agg {
  id: string;
  type: 'avg' | 'max' | 'min' | 'count' | 'date_histogram' | 'terms' | 'percentiles';
  schema: 'metric' | 'segment' | 'group' | 'bucket' | 'split';
  params: Record<string, unknown>;
}

const INDEX_PATTERN_ID = 'cryptocast-predictions';
const ERRORS_PATTERN_ID = 'cryptocast-errors';
const SEARCH_REF = 'kibanaSavedObjectMeta.searchSourceJSON.index';

function visualization(
  id: string,
  title: string,
  type: string,
  aggs: Agg[],
  params: Record<string, unknown>,
  indexPattern = INDEX_PATTERN_ID,
) {
  return {
    id,
    type: 'visualization' as const,
    attributes: {
      title,
      visState: JSON.stringify({ title, type, params, aggs: aggs.map((a) => ({ enabled: true, ...a })) }),
      uiStateJSON: '{}',
      description: '',
      version: 1,
      kibanaSavedObjectMeta: {
        searchSourceJSON: JSON.stringify({
          query: { query: '', language: 'kuery' },
          filter: [],
          indexRefName: SEARCH_REF,
        }),
      },
    },
    references: [{ name: SEARCH_REF, type: 'index-pattern', id: indexPattern }],
    migrationVersion: { visualization: '7.10.0' },
  };
}

const overTime = (field: string, id = '2'): Agg => ({
  id,
  type: 'date_histogram',
  schema: 'segment',
  params: { field, interval: 'auto', min_doc_count: 1, extended_bounds: {} },
});
const byPair: Agg = {
  id: '3',
  type: 'terms',
  schema: 'group',
  params: { field: 'pair', size: 10, order: 'asc', orderBy: '_key' },
};
const lineParams = {
  type: 'line',
  addTooltip: true,
  addLegend: true,
  legendPosition: 'right',
  times: [],
  addTimeMarker: false,
};

/** The saved objects, in import order (the index pattern first). */
export function dashboardObjects(prefix = 'cryptocast-'): SavedObject[] {
  const vis = [
    visualization(
      'cryptocast-predicted-close',
      'cryptocast: predicted close (5 min ahead) with p10–p90, by pair',
      'line',
      [
        { id: '1', type: 'avg', schema: 'metric', params: { field: 'predictedClose' } },
        { id: '4', type: 'avg', schema: 'metric', params: { field: 'p10' } },
        { id: '5', type: 'avg', schema: 'metric', params: { field: 'p90' } },
        { id: '6', type: 'avg', schema: 'metric', params: { field: 'close' } },
        overTime('targetTs'),
        byPair,
      ],
      lineParams,
    ),
    visualization(
      'cryptocast-predicted-return',
      'cryptocast: predicted return (bps), by pair',
      'line',
      [
        { id: '1', type: 'avg', schema: 'metric', params: { field: 'predictedReturnBps' } },
        overTime('windowEnd'),
        byPair,
      ],
      lineParams,
    ),
    visualization(
      'cryptocast-latency',
      'cryptocast: candle close → prediction published (ms), p50 / p99 / max',
      'line',
      [
        {
          id: '1',
          type: 'percentiles',
          schema: 'metric',
          params: { field: 'latencyMs', percents: [50, 99] },
        },
        { id: '4', type: 'max', schema: 'metric', params: { field: 'latencyMs' } },
        overTime('windowEnd'),
      ],
      lineParams,
    ),
    visualization(
      'cryptocast-by-model',
      'cryptocast: predictions per model version',
      'table',
      [
        { id: '1', type: 'count', schema: 'metric', params: {} },
        {
          id: '2',
          type: 'terms',
          schema: 'bucket',
          params: { field: 'modelName', size: 10, order: 'desc', orderBy: '1' },
        },
        {
          id: '3',
          type: 'terms',
          schema: 'bucket',
          params: { field: 'modelVersion', size: 20, order: 'desc', orderBy: '_key' },
        },
      ],
      { perPage: 10, showPartialRows: false, showMetricsAtAllLevels: false },
    ),
    visualization(
      'cryptocast-mae-vs-persistence',
      'cryptocast: absolute error, model vs persistence (scored at maturity), by pair',
      'line',
      [
        { id: '1', type: 'avg', schema: 'metric', params: { field: 'absError' } },
        { id: '4', type: 'avg', schema: 'metric', params: { field: 'persistenceAbsError' } },
        overTime('targetTs'),
        byPair,
      ],
      lineParams,
      ERRORS_PATTERN_ID,
    ),
    visualization(
      'cryptocast-direction-and-band',
      'cryptocast: direction hits and p10–p90 coverage, by pair',
      'table',
      [
        { id: '1', type: 'count', schema: 'metric', params: {} },
        {
          id: '2',
          type: 'terms',
          schema: 'bucket',
          params: { field: 'pair', size: 10, order: 'asc', orderBy: '_key' },
        },
        {
          id: '3',
          type: 'terms',
          schema: 'bucket',
          params: { field: 'directionHit', size: 3, order: 'desc', orderBy: '_key' },
        },
        {
          id: '4',
          type: 'terms',
          schema: 'bucket',
          params: { field: 'inBand', size: 3, order: 'desc', orderBy: '_key' },
        },
      ],
      { perPage: 20, showPartialRows: false, showMetricsAtAllLevels: false },
      ERRORS_PATTERN_ID,
    ),
    visualization(
      'cryptocast-scoring-status',
      'cryptocast: scored and unscorable predictions (with the reason)',
      'table',
      [
        { id: '1', type: 'count', schema: 'metric', params: {} },
        {
          id: '2',
          type: 'terms',
          schema: 'bucket',
          params: { field: 'status', size: 3, order: 'desc', orderBy: '1' },
        },
        {
          id: '3',
          type: 'terms',
          schema: 'bucket',
          params: { field: 'reason', size: 5, order: 'desc', orderBy: '1', missingBucket: true },
        },
      ],
      { perPage: 10, showPartialRows: false, showMetricsAtAllLevels: false },
      ERRORS_PATTERN_ID,
    ),
  ];
  const panels = vis.map((_, i) => ({
    panelIndex: String(i + 1),
    gridData: { x: (i % 2) * 24, y: Math.floor(i / 2) * 15, w: 24, h: 15, i: String(i + 1) },
    embeddableConfig: {},
    version: '2.19.0',
    panelRefName: `panel_${i}`,
  }));
  return [
    {
      id: INDEX_PATTERN_ID,
      type: 'index-pattern',
      attributes: { title: predictionsIndexPattern(prefix), timeFieldName: 'windowEnd' },
      references: [],
      migrationVersion: { 'index-pattern': '7.6.0' },
    },
    {
      id: ERRORS_PATTERN_ID,
      type: 'index-pattern',
      // Error records are placed in time by the minute they judge.
      attributes: { title: errorsIndexPattern(prefix), timeFieldName: 'targetTs' },
      references: [],
      migrationVersion: { 'index-pattern': '7.6.0' },
    },
    ...vis,
    {
      id: 'cryptocast',
      type: 'dashboard',
      attributes: {
        title: 'cryptocast: predictions and errors',
        description:
          'Predictions of the champion model, their interval and latency, and how wrong they were at maturity (against persistence)',
        hits: 0,
        panelsJSON: JSON.stringify(panels),
        optionsJSON: JSON.stringify({ hidePanelTitles: false, useMargins: true }),
        version: 1,
        timeRestore: true,
        timeFrom: 'now-24h',
        timeTo: 'now',
        refreshInterval: { pause: false, value: 60_000 },
        kibanaSavedObjectMeta: {
          searchSourceJSON: JSON.stringify({ query: { query: '', language: 'kuery' }, filter: [] }),
        },
      },
      references: vis.map((v, i) => ({ name: `panel_${i}`, type: 'visualization', id: v.id })),
      migrationVersion: { dashboard: '7.9.3' },
    },
  ];
}

/** NDJSON text: one object per line. */
export function dashboardsNdjson(prefix = 'cryptocast-'): string {
  return `${dashboardObjects(prefix)
    .map((o) => JSON.stringify(o))
    .join('\n')}\n`;
}
