import type { Bus, Subscription } from '../../runtime/bus.ts';
import type { AlertNotification } from '../../schemas/alert.ts';
import { topics } from '../../schemas/topics.ts';
import { type OpenTableOptions, openTable } from '../../stores/open.ts';
import type { Column, Table, TableSpec } from '../../stores/table.ts';

/**
 * The alert notifications of `cryptocast run --source live`, kept in its store: its in-process bus starts empty, so
 * the `alerts` topic a restarted monitor takes its firing alerts back from (and the API its active list) was empty
 * after every restart. An alert still firing was announced again as new (`repeat` 0, to every channel), and one
 * whose condition had cleared meanwhile — or whose rule was removed — was never resolved. Keyed by series
 * (`rule|key`) and time; a restart reads the newest of each series back into the topic, and that is all it reads, so
 * the older notifications of a series are deleted once a newer one is stored (`keepAlertsIn`): the table holds one row
 * per alert series ever notified (rules × pairs), not one per reminder (a firing alert is reminded on its schedule
 * for as long as it fires: thousands of rows a month that nothing read).
 */
type Row = AlertNotification;

const col = (
  name: string,
  type: Column<Row>['type'],
  get: Column<Row>['get'],
  nullable = false,
): Column<Row> => ({
  name,
  type,
  get,
  nullable,
});

export const ALERTS_SPEC: TableSpec<Row> = {
  name: 'alerts_v1',
  key: ['series', 'notified_at'],
  columns: [
    col('series', 'text', (n) => `${n.rule}|${n.key}`),
    col('notified_at', 'bigint', (n) => n.at),
    col('status', 'text', (n) => n.status),
    col('rule', 'text', (n) => n.rule),
    col('kind', 'text', (n) => n.kind),
    col('severity', 'text', (n) => n.severity),
    col('alert_key', 'text', (n) => n.key),
    col('alert_value', 'double', (n) => n.value, true),
    col('message', 'text', (n) => n.message),
    col('starts_at', 'bigint', (n) => n.startsAt),
    col('repeats', 'bigint', (n) => n.repeat),
  ],
  fromRow: (r) => ({
    status: String(r.status) as Row['status'],
    rule: String(r.rule),
    kind: String(r.kind),
    severity: String(r.severity) as Row['severity'],
    key: String(r.alert_key),
    value: r.alert_value === null || r.alert_value === undefined ? null : Number(r.alert_value),
    message: String(r.message),
    startsAt: Number(r.starts_at),
    at: Number(r.notified_at),
    repeat: Number(r.repeats),
  }),
};

export type AlertsTable = Table<Row>;

export const openAlertsTable = (url: string, o?: OpenTableOptions): Promise<AlertsTable> =>
  openTable(ALERTS_SPEC, url, o);

const seriesOf = (n: AlertNotification) => `${n.rule}|${n.key}`;

/**
 * Deletes what a restart will not read: each series' notifications older than its newest in `stored` (written
 * first, so a stop between the two statements leaves an extra row, never a series without its newest).
 */
async function trimOlderThan(table: AlertsTable, stored: readonly AlertNotification[]): Promise<void> {
  const newestAt = new Map<string, number>();
  for (const n of stored) newestAt.set(seriesOf(n), Math.max(newestAt.get(seriesOf(n)) ?? n.at, n.at));
  for (const [series, at] of newestAt) await table.deleteBefore(series, at);
}

/**
 * Puts the newest stored notification of each series back on the bus's `alerts` topic (before the monitor and the API
 * read its tail), then stores every notification published there from now on, each series trimmed to its newest
 * (a store written before the trim is trimmed here too). Returns the subscription to stop.
 */
export async function keepAlertsIn(table: AlertsTable, bus: Bus): Promise<Subscription> {
  const newest: AlertNotification[] = [];
  for (const series of await table.series()) {
    const n = await table.latest(series);
    if (n !== undefined) newest.push(n);
  }
  await trimOlderThan(table, newest);
  await bus.ensureTopics([topics.alerts]);
  if (newest.length > 0)
    await bus.publish(
      topics.alerts,
      newest.sort((a, b) => a.at - b.at),
    );
  return bus.subscribe<AlertNotification>({
    topic: topics.alerts,
    group: 'alerts-store',
    from: 'latest',
    service: 'monitor',
    handle: async (batch) => {
      const stored = batch.records.map((r) => r.value);
      await table.write(stored);
      await trimOlderThan(table, stored);
      return undefined;
    },
  });
}
