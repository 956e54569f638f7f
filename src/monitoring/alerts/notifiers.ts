import { secret } from '../../config/env.ts';
import type { Notification } from './state.ts';

/**
 * Where alerts go, and in what shape: Slack incoming webhooks and Discord webhooks in their documented payload
 * formats, and a generic JSON webhook. URLs come only from the environment (they are secrets: anyone holding one can
 * post), and are never logged.
 */
export interface Channel {
  readonly name: 'slack' | 'discord' | 'webhook';
  readonly url: string;
  readonly headers: Record<string, string>;
  body(n: Notification): unknown;
}

const iso = (ts: number) => new Date(ts).toISOString().replace('.000Z', 'Z');
const title = (n: Notification) =>
  `${n.status === 'firing' ? (n.repeat > 0 ? 'STILL FIRING' : 'FIRING') : 'RESOLVED'}: ${n.rule}${n.key === 'all' ? '' : ` (${n.key})`}`;

/** Slack incoming webhook: `text` (the notification fallback) and Block Kit `blocks`. */
export function slackBody(n: Notification) {
  return {
    text: `${title(n)} — ${n.message}`,
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: title(n).slice(0, 150) } },
      { type: 'section', text: { type: 'mrkdwn', text: n.message.slice(0, 3000) } },
      {
        type: 'context',
        elements: [
          {
            type: 'mrkdwn',
            text: `severity *${n.severity}* · since ${iso(n.startsAt)} · cryptocast ${n.kind}${n.repeat ? ` · reminder ${n.repeat}` : ''}`,
          },
        ],
      },
    ],
  };
}

const COLOURS = {
  firing: { critical: 0xd32f2f, warning: 0xf57c00, info: 0x1976d2 },
  resolved: 0x388e3c,
} as const;

/** Discord webhook: `content` (≤ 2000 characters) and one embed (title ≤ 256, description ≤ 4096). */
export function discordBody(n: Notification) {
  return {
    username: 'cryptocast',
    content: `${title(n)}`.slice(0, 2000),
    embeds: [
      {
        title: title(n).slice(0, 256),
        description: n.message.slice(0, 4096),
        color: n.status === 'resolved' ? COLOURS.resolved : COLOURS.firing[n.severity],
        fields: [
          { name: 'severity', value: n.severity, inline: true },
          { name: 'series', value: n.key, inline: true },
          { name: 'since', value: iso(n.startsAt), inline: true },
        ],
        timestamp: new Date(n.at).toISOString(),
      },
    ],
  };
}

/** The generic webhook: the notification itself, versioned. */
export function webhookBody(n: Notification) {
  return { version: 1, source: 'cryptocast', ...n };
}

/** The channels configured in the environment (none: alerts are logged only). */
export function channelsFromEnv(env: NodeJS.ProcessEnv = process.env): Channel[] {
  const out: Channel[] = [];
  const json = { 'content-type': 'application/json' };
  const slack = secret('CRYPTOCAST_SLACK_WEBHOOK_URL', env);
  const discord = secret('CRYPTOCAST_DISCORD_WEBHOOK_URL', env);
  const webhook = secret('CRYPTOCAST_ALERT_WEBHOOK_URL', env);
  const token = secret('CRYPTOCAST_ALERT_WEBHOOK_TOKEN', env);
  if (slack) out.push({ name: 'slack', url: slack, headers: json, body: slackBody });
  if (discord) out.push({ name: 'discord', url: discord, headers: json, body: discordBody });
  if (webhook)
    out.push({
      name: 'webhook',
      url: webhook,
      headers: token ? { ...json, authorization: `Bearer ${token}` } : json,
      body: webhookBody,
    });
  return out;
}
