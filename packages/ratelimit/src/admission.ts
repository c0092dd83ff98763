import type { Queue } from 'bullmq';

export interface AdmissionDecision {
  allowed: boolean;
  /** Jobs waiting to start (waiting + prioritized + delayed). */
  queued: number;
  cap: number;
}

/**
 * The global cap on queued work: new jobs are refused while this many jobs wait to start,
 * rather than letting the queue grow without bound. The count is read when asked, so several
 * API instances may overshoot by at most the requests they admit at the same instant.
 */
export async function checkQueueAdmission(queue: Queue, cap: number): Promise<AdmissionDecision> {
  const c = await queue.getJobCounts('waiting', 'prioritized', 'delayed');
  const queued = (c.waiting ?? 0) + (c.prioritized ?? 0) + (c.delayed ?? 0);
  return { allowed: queued < cap, queued, cap };
}
