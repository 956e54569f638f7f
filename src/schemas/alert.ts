import { z } from 'zod';
import { EpochMs } from './common.ts';

/**
 * An alert notification of the monitor (see monitoring/alerts/state.ts): firing (first, or a reminder) or resolved.
 * On the `alerts` topic so that the API (and its dashboard) know which alerts are active, whichever process raised
 * them. Keyed by rule and series.
 */
export const AlertNotificationSchema = z.object({
  status: z.enum(['firing', 'resolved']),
  rule: z.string().min(1),
  kind: z.string().min(1),
  severity: z.enum(['info', 'warning', 'critical']),
  /** The series: a pair, or `all`. */
  key: z.string().min(1),
  value: z.number().nullable(),
  message: z.string(),
  startsAt: z.number(),
  at: EpochMs,
  repeat: z.number().int().nonnegative(),
});
export type AlertNotification = z.infer<typeof AlertNotificationSchema>;
