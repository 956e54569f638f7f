/**
 * The longest delay setTimeout and setInterval honour: past 2^31 − 1 ms (~24.8 days) Node fires after 1 ms (and warns
 * with a TimeoutOverflowWarning), so a poll interval set longer polls without a pause.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;
