import type { Queue } from 'bullmq';
import type { AdminQueue, AdminQueueName } from '../schemas/admin.js';

const STATES = ['waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed'] as const;

/**
 * The BullMQ queues of the deployment, by queue name, for the admin API: job counts per state,
 * pause and resume. Holds no connection of its own (the queues belong to their plugins).
 */
export class AdminQueues {
  readonly #queues: ReadonlyMap<AdminQueueName, Queue>;

  constructor(queues: Record<AdminQueueName, Queue>) {
    this.#queues = new Map(Object.entries(queues) as Array<[AdminQueueName, Queue]>);
  }

  names(): AdminQueueName[] {
    return [...this.#queues.keys()];
  }

  /** Every queue's counts and paused flag, in `names()` order. */
  async list(): Promise<AdminQueue[]> {
    return Promise.all(this.names().map((name) => this.get(name)));
  }

  async get(name: AdminQueueName): Promise<AdminQueue> {
    const queue = this.#queue(name);
    const [counts, paused] = await Promise.all([queue.getJobCounts(...STATES), queue.isPaused()]);
    const c = (s: (typeof STATES)[number]) => counts[s] ?? 0;
    return {
      object: 'queue',
      name,
      is_paused: paused,
      counts: {
        waiting: c('waiting'),
        active: c('active'),
        delayed: c('delayed'),
        prioritized: c('prioritized'),
        completed: c('completed'),
        failed: c('failed'),
        // BullMQ 6 keeps a paused queue's jobs where they are (pausing only sets a flag): the jobs
        // the pause holds back are the ones that would otherwise be handed out.
        paused: paused ? c('waiting') + c('prioritized') : 0,
      },
    };
  }

  /** Workers of every process stop taking new jobs of this queue; jobs already running finish. Idempotent. */
  async pause(name: AdminQueueName): Promise<AdminQueue> {
    await this.#queue(name).pause();
    return this.get(name);
  }

  /** Idempotent. */
  async resume(name: AdminQueueName): Promise<AdminQueue> {
    await this.#queue(name).resume();
    return this.get(name);
  }

  #queue(name: AdminQueueName): Queue {
    const queue = this.#queues.get(name);
    if (!queue) throw new Error(`no queue ${name}`); // the route's schema admits only known names
    return queue;
  }
}
