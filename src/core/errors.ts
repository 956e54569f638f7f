/** A mistake in how a command was called (bad flag, missing file): printed without a stack trace, exit 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
