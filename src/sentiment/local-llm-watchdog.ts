import { Worker } from 'node:worker_threads';

/**
 * The model process's watchdog (`local-llm-worker.ts`): a worker thread that ends that process (SIGKILL) once the
 * backend's process is gone. The model process leaves by itself when its IPC channel closes ('disconnect'), but that
 * event runs on its main thread, which a wedged call may hold for ever: the backend's process killed by SIGKILL (the
 * OOM killer, `kill -9`), it stayed, orphaned, with the weights in its memory. This thread is never held by a call: it
 * sees the process adopted by another (its parent id no longer the backend's) within `everyMs`.
 *
 * Its source is plain JavaScript, evaluated: a `.ts` file would load the type stripper into the thread too, 27.5 MB of
 * RSS against 17 MB (measured, Node 24.21). `process.ppid` asks the kernel each time (getppid). Unref'd: it never keeps
 * the process alive by itself; a failure is said on stderr, not thrown (a worker's unhandled 'error' would end the
 * process, which answers without the watchdog).
 */
export function startWatchdog(backendPid: number, everyMs: number): Worker {
  const source = `
    const { workerData } = require('node:worker_threads');
    setInterval(() => {
      if (process.ppid !== workerData.backendPid) process.kill(process.pid, 'SIGKILL');
    }, workerData.everyMs);`;
  const watchdog = new Worker(source, { eval: true, workerData: { backendPid, everyMs } });
  watchdog.on('error', (err) => process.stderr.write(`the local model's watchdog failed: ${err.message}\n`));
  watchdog.unref();
  return watchdog;
}
