/** `closed`: calls go through. `open`: refused until the cool-down ends. `half-open`: the next call is the probe. */
export type CircuitState = 'closed' | 'open' | 'half-open';

export interface CircuitBreakerOptions {
  /** Consecutive failed calls that open the circuit. */
  threshold: number;
  /** How long an open circuit refuses calls before it lets one through (the probe). */
  cooldownMs: number;
  /** The clock of the cool-down (ms). */
  now: () => number;
}

/** Whether a call may go through; `probe` when it is the one call let through after the cool-down. */
export type Admission = { admitted: true; probe: boolean } | { admitted: false; retryAt: number };

/**
 * A circuit breaker for a dependency that can hang or fail for a long time (a local model's wedged native call): after
 * `threshold` consecutive failures every call is refused at once for `cooldownMs`, then one call is let through; its
 * success closes the circuit, its failure opens it for another cool-down. The caller reports each admitted call's end
 * (`succeeded`, `failed`, `abandoned`) and logs the transitions these return, so a long outage costs one line per
 * open and close, not one per call.
 */
export class CircuitBreaker {
  private readonly threshold: number;
  private readonly cooldownMs: number;
  private readonly now: () => number;
  private consecutiveFailures = 0;
  /** Set while the circuit is open: until when calls are refused. */
  private openUntil: number | undefined;
  private probeInFlight = false;

  constructor(opts: CircuitBreakerOptions) {
    this.threshold = Math.max(1, opts.threshold);
    this.cooldownMs = opts.cooldownMs;
    this.now = opts.now;
  }

  get state(): CircuitState {
    if (this.openUntil === undefined) return 'closed';
    return this.now() < this.openUntil ? 'open' : 'half-open';
  }

  /** Failed calls in a row (reset by a success). */
  get failures(): number {
    return this.consecutiveFailures;
  }

  /** While open: when the next call will be let through. */
  get retryAt(): number | undefined {
    return this.openUntil;
  }

  /** Asks to make a call: refused while open, and after the cool-down while the probe is still out. */
  admit(): Admission {
    if (this.openUntil === undefined) return { admitted: true, probe: false };
    if (this.probeInFlight || this.now() < this.openUntil)
      return { admitted: false, retryAt: this.openUntil };
    this.probeInFlight = true;
    return { admitted: true, probe: true };
  }

  /** An admitted call answered. True when that closes an open circuit. */
  succeeded(probe: boolean): boolean {
    if (probe) this.probeInFlight = false;
    this.consecutiveFailures = 0;
    const wasOpen = this.openUntil !== undefined;
    this.openUntil = undefined;
    return wasOpen;
  }

  /**
   * An admitted call failed. `opened`: this failure opened the circuit; `still-open`: it was the probe, and the circuit
   * is open for another cool-down; undefined: it stays as it was.
   */
  failed(probe: boolean): 'opened' | 'still-open' | undefined {
    this.consecutiveFailures++;
    if (probe) {
      this.probeInFlight = false;
      this.openUntil = this.now() + this.cooldownMs;
      return 'still-open';
    }
    // A call let through before the circuit opened that fails after: counted, the cool-down is not moved.
    if (this.openUntil !== undefined || this.consecutiveFailures < this.threshold) return undefined;
    this.openUntil = this.now() + this.cooldownMs;
    return 'opened';
  }

  /** An admitted call ended neither way (the caller stopped it): a probe's turn is given back. */
  abandoned(probe: boolean): void {
    if (probe) this.probeInFlight = false;
  }
}
