import type { CryptocastError } from '../../core/errors.ts';

/**
 * How long a running Kafka client may be refused (CC_ERR_BUS_AUTH, CC_ERR_BUS_TLS: SASL authentication failed, an
 * authorization error, a TLS failure) before the refusal counts as for good (`KafkaBus.refused`, which then ends the
 * process for Kubernetes to restart it with the Secret as it is now).
 *
 * A refusal that clears by itself (a broker of a rolling restart, a certificate swapped broker by broker) must not
 * restart every pod at once; a rotated password must still restart them. So refusals are counted per path of the bus
 * (its publishes, its broker waits, each subscription's loop): every such path retries what was refused, and a success
 * of the path (`accepted`) clears its refusal. A path refused again once `graceMs` have passed since its first refusal
 * with no success between is refused for good. Per path, not for the whole bus: without re-authentication on the
 * broker (`connections.max.reauth.ms` unset), a subscription's old connections go on being served while the
 * producer's new ones are refused, and those fetches must not hide the producer's refusal for ever.
 *
 * The clock is injected (`now`): nothing here waits or holds a timer, it only judges the refusals the paths report
 * (each of them retries with a back-off of at most 15 s, so for good is said at most that long after the grace).
 */
export class RefusalGrace {
  /** Each path refused since its last success: since when, and its latest refusal. */
  private readonly refusedPaths = new Map<string, { since: number; err: CryptocastError }>();
  private forGoodWith: CryptocastError | undefined;

  readonly graceMs: number;
  private readonly now: () => number;

  constructor(graceMs: number, now: () => number = Date.now) {
    this.graceMs = graceMs;
    this.now = now;
  }

  /**
   * `path` met `err`: 'first' when the path was not refused before (say it), 'within' while the grace lasts, 'for-good'
   * once the path has been refused for `graceMs` with no success between (and from then on, for every path: the
   * process is ending).
   */
  refused(path: string, err: CryptocastError): 'first' | 'within' | 'for-good' {
    if (this.forGoodWith !== undefined) return 'for-good';
    const at = this.now();
    const seen = this.refusedPaths.get(path);
    if (seen === undefined) {
      this.refusedPaths.set(path, { since: at, err });
      if (this.graceMs > 0) return 'first';
    } else seen.err = err;
    if (at - (seen?.since ?? at) < this.graceMs) return 'within';
    this.forGoodWith = err;
    return 'for-good';
  }

  /** `path` was served: its refusal, if any, has cleared (true then). */
  accepted(path: string): boolean {
    return this.refusedPaths.delete(path);
  }

  /** The latest refusal of a path still refused (what /ready says), or undefined. */
  refusal(): CryptocastError | undefined {
    let latest: CryptocastError | undefined;
    for (const { err } of this.refusedPaths.values()) latest = err;
    return this.forGoodWith ?? latest;
  }

  /** The refusal that was for good, once one was. */
  forGood(): CryptocastError | undefined {
    return this.forGoodWith;
  }
}
