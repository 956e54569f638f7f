import { AtomicFile, checkOutputFile } from '../../core/files.ts';
import { asyncApiDocument } from '../../schemas/asyncapi.ts';

/** `cryptocast schemas`: the topic contracts as an AsyncAPI document (stdout or a file). */
export async function schemas(opts: { output?: string }): Promise<void> {
  const text = JSON.stringify(asyncApiDocument(process.env.npm_package_version ?? '0.1.0'), null, 2) + '\n';
  if (opts.output) {
    checkOutputFile(opts.output);
    const out = new AtomicFile(opts.output);
    await out.write(text);
    await out.commit();
  } else process.stdout.write(text);
}
