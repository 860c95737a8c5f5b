/**
 * The events bus: components publish Docker-shaped events; `GET /events` replays the recent
 * ones in [since, until] and then streams live ones. Kept in memory (a ring of recent events),
 * as dockerd does.
 */
import type { Filters, SystemEvent } from './services.js';

const RING = 2048;

/** Publish function handed to components. */
export type Publish = (type: string, action: string, id: string, attributes?: Record<string, string>) => void;

function matches(ev: SystemEvent, f: Filters): boolean {
  const check = (key: string, ok: (v: string) => boolean): boolean => {
    const vals = f[key];
    return !vals || vals.length === 0 || vals.some(ok);
  };
  const attrs = ev.Actor.Attributes;
  const baseAction = ev.Action.split(':')[0]!.trim();
  return (
    check('type', (v) => v === ev.Type) &&
    check('event', (v) => v === ev.Action || v === baseAction) &&
    check('container', (v) => ev.Type === 'container' && (ev.Actor.ID.startsWith(v) || attrs['name'] === v)) &&
    check('image', (v) => (ev.Type === 'image' && (ev.Actor.ID === v || attrs['name'] === v)) || attrs['image'] === v) &&
    check('volume', (v) => ev.Type === 'volume' && ev.Actor.ID === v) &&
    check('network', (v) => ev.Type === 'network' && (ev.Actor.ID.startsWith(v) || attrs['name'] === v)) &&
    check('daemon', () => ev.Type === 'daemon') &&
    check('label', (v) => {
      const i = v.indexOf('=');
      return i < 0 ? v in attrs : attrs[v.slice(0, i)] === v.slice(i + 1);
    })
  );
}

/** In-memory events with replay and live subscription. */
export class EventBus {
  private readonly ring: SystemEvent[] = [];
  private readonly subs = new Set<(ev: SystemEvent) => void>();

  /** Publish an event now. */
  publish: Publish = (type, action, id, attributes = {}) => {
    const nowMs = Date.now();
    const nano = BigInt(nowMs) * 1_000_000n + BigInt(Math.floor((performance.now() % 1) * 1e6));
    const ev: SystemEvent = {
      Type: type,
      Action: action,
      Actor: { ID: id, Attributes: attributes },
      scope: 'local',
      time: Math.floor(nowMs / 1000),
      timeNano: Number(nano),
    };
    if (type === 'container' || type === 'image') {
      ev.status = action;
      ev.id = id;
      if (attributes['image']) ev.from = attributes['image'];
    }
    this.ring.push(ev);
    if (this.ring.length > RING) this.ring.shift();
    for (const s of this.subs) s(ev);
  };

  /** Past events in range, then live ones (when until is absent) until the signal aborts. */
  async *events(opts: { since?: number; until?: number; filters: Filters; signal: AbortSignal }): AsyncGenerator<SystemEvent> {
    const sinceNs = opts.since === undefined ? undefined : opts.since * 1e9;
    const untilNs = opts.until === undefined ? undefined : opts.until * 1e9;
    const queue: SystemEvent[] = [];
    let wake: (() => void) | undefined;
    const sub = (ev: SystemEvent) => {
      queue.push(ev);
      wake?.();
    };
    const live = untilNs === undefined || untilNs > Date.now() * 1e6;
    if (live) this.subs.add(sub);
    const onAbort = () => wake?.();
    opts.signal.addEventListener('abort', onAbort, { once: true });
    try {
      if (sinceNs !== undefined) {
        for (const ev of [...this.ring]) {
          if (ev.timeNano < sinceNs) continue;
          if (untilNs !== undefined && ev.timeNano > untilNs) continue;
          if (matches(ev, opts.filters)) yield ev;
        }
      }
      if (!live) return;
      const stopAt = untilNs === undefined ? undefined : untilNs / 1e6;
      for (;;) {
        if (opts.signal.aborted) return;
        while (queue.length) {
          const ev = queue.shift()!;
          if (untilNs !== undefined && ev.timeNano > untilNs) return;
          if (matches(ev, opts.filters)) yield ev;
        }
        const waitMs = stopAt === undefined ? 60_000 : stopAt - Date.now();
        if (waitMs <= 0) return;
        let timer: NodeJS.Timeout | undefined;
        await new Promise<void>((resolve) => {
          wake = resolve;
          timer = setTimeout(resolve, Math.min(waitMs, 60_000));
        });
        clearTimeout(timer); // woken by an event or an abort: drop the timer, or one piles up per event
        wake = undefined;
      }
    } finally {
      this.subs.delete(sub);
      opts.signal.removeEventListener('abort', onAbort);
    }
  }
}
