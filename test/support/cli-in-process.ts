import { type Command, CommanderError } from 'commander';
import { commanderExitStatus, program } from '../../src/cli/main.ts';

/**
 * `cryptocast ARGS` parsed in this process by the binary's own program (src/cli/main.ts): its flags, their checks
 * (checkFlagValues), commander's refusals and main's line for them, the status the binary would end with — in a
 * millisecond where spawning the binary takes a second or more on a busy machine. No command starts: the parse stops
 * where one would (after the program's own preAction hooks, such as the refusal of passwords in flags).
 *
 * What this cannot prove, the process itself (its exit status, what reaches stderr), a test proves with the binary
 * (test/support/cli.ts) for each kind of answer it relies on here.
 */
export interface ParsedCommandLine {
  /** The binary's exit status, or `started` when a command would have started (its flags all taken). */
  status: number | 'started';
  stdout: string;
  stderr: string;
}

/** Thrown by the hook below where a command would start. */
class CommandWouldStart extends Error {}

let stdout = '';
let stderr = '';
const everyCommand = (c: Command): Command[] => [c, ...c.commands.flatMap(everyCommand)];
// Set on each command (commander copies the settings into a subcommand when it is declared): output into the strings
// above (main's line for a refusal, `outputError`, is kept), and commander's exits thrown instead of process.exit.
for (const c of everyCommand(program)) {
  c.configureOutput({
    writeOut: (text) => {
      stdout += text;
    },
    writeErr: (text) => {
      stderr += text;
    },
  });
  c.exitOverride();
}
// After main's own preAction hooks (hooks of a command run in the order they were added).
program.hook('preAction', () => {
  throw new CommandWouldStart();
});

/**
 * Parses `args` with `env` set over process.env meanwhile (a flag's variable is read as commander parses), one command
 * line at a time (the program is one object: commander restores its state before each parse).
 */
export async function parseCommandLine(
  args: readonly string[],
  env: Readonly<Record<string, string>> = {},
): Promise<ParsedCommandLine> {
  const before = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  stdout = '';
  stderr = '';
  try {
    await program.parseAsync([...args], { from: 'user' });
    return { status: 'started', stdout, stderr };
  } catch (err) {
    if (err instanceof CommandWouldStart) return { status: 'started', stdout, stderr };
    if (err instanceof CommanderError) return { status: commanderExitStatus(err), stdout, stderr };
    throw err;
  } finally {
    for (const [k, v] of Object.entries(before)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}
