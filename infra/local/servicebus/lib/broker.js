'use strict';
// Queue semantics: sequence numbers, peek-lock and receive-and-delete
// delivery, locks and their expiry, settlement, delivery counts, dead-letter
// sub-queues, deferral, scheduling, TTL expiry and the journal that makes
// accepted messages survive a restart. Nothing here knows about AMQP links;
// amqp.js adapts links to the consumer interface used below.

const crypto = require('crypto');
const codec = require('./codec.js');
const { ENQUEUE, DELETE, UPDATE, SEQUENCE } = require('./journal.js');

const ACTIVE = 0;
const DEFERRED = 1;
const SCHEDULED = 2;

const DLQ_SUFFIX = '/$deadletterqueue';

class LockLostError extends Error {}
class NotFoundError extends Error {}

// MinHeap orders available messages by sequence number.
class MinHeap {
  constructor() { this.a = []; }
  get size() { return this.a.length; }
  push(m) {
    const a = this.a;
    a.push(m);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p].seq <= m.seq) break;
      a[i] = a[p];
      i = p;
    }
    a[i] = m;
  }
  pop() {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= a.length) break;
        const r = l + 1;
        const c = r < a.length && a[r].seq < a[l].seq ? r : l;
        if (a[c].seq >= last.seq) break;
        a[i] = a[c];
        i = c;
      }
      a[i] = last;
    }
    return top;
  }
}

// Lock tokens: a random prefix and a counter, unique for the process.
const tokenPrefix = crypto.randomBytes(8);
let tokenCounter = 0n;
function newLockToken() {
  const t = Buffer.allocUnsafe(16);
  tokenPrefix.copy(t, 0);
  t.writeBigUInt64BE(++tokenCounter, 8);
  t[6] = (t[6] & 0x0f) | 0x40; // version 4 shape, so tools print it as a UUID
  return t;
}

// dotnetOrder swaps a UUID into the .NET GUID byte order the SDK expects in
// delivery tags.
function dotnetOrder(u) {
  const t = Buffer.from(u);
  t[0] = u[3]; t[1] = u[2]; t[2] = u[1]; t[3] = u[0];
  t[4] = u[5]; t[5] = u[4];
  t[6] = u[7]; t[7] = u[6];
  return t;
}

function newStats() {
  return {
    sent: 0, received: 0, completed: 0, abandoned: 0, deferred: 0, deadLettered: 0,
    released: 0, lockLost: 0, lockExpired: 0, renewed: 0, expired: 0, scheduled: 0, cancelled: 0,
  };
}

class Queue {
  constructor(broker, cfg, parent) {
    this.broker = broker;
    this.cfg = cfg;
    this.parent = parent || null;
    this.name = parent ? parent.name + '/$DeadLetterQueue' : cfg.name;
    this.key = this.name.toLowerCase();
    this.messages = new Map(); // seq -> message
    this.available = new MinHeap();
    this.locked = new Map(); // lock token hex -> message
    this.scheduled = new Set();
    this.consumers = [];
    this.rr = 0;
    this.nextSeq = 1;
    this.bytes = 0;
    this.stats = newStats();
    this.dispatchQueued = false;
    this.deadLetterQueue = parent ? null : new Queue(broker, cfg, this);
  }

  get journal() { return this.broker.journal; }

  // --- enqueueing ---------------------------------------------------------

  // build turns an encoded message into a stored one (not yet enqueued).
  build(raw, now) {
    const p = codec.parse(raw);
    const m = {
      seq: 0,
      enqueuedAt: now,
      durable: p.durable,
      ttl: p.ttl,
      annotations: p.annotations,
      properties: p.properties,
      appProperties: p.appProperties,
      body: p.body,
      scheduledAt: p.scheduledAt,
      deadLetterSource: undefined,
      state: ACTIVE,
      dc: 0,
      expiresAt: 0,
      size: raw.length,
      lock: null,
      inHeap: false,
    };
    // The stored form is re-encoded from the parts, so keep the parts' bytes
    // independent of the transfer buffer they were sliced from.
    if (m.properties) m.properties = Buffer.from(m.properties);
    if (m.appProperties) m.appProperties = Buffer.from(m.appProperties);
    m.body = Buffer.from(m.body);
    this.setExpiry(m);
    return m;
  }

  setExpiry(m) {
    let ttl = this.cfg.ttlMs;
    if (m.ttl !== undefined && m.ttl < ttl) ttl = m.ttl;
    if (this.parent) ttl = Infinity; // dead-lettered messages do not expire
    m.effectiveTtl = ttl;
    m.expiresAt = ttl === Infinity ? 0 : m.enqueuedAt + ttl;
  }

  // accept enqueues raw messages (one transfer: a single message or the
  // messages of a batch) and calls cb once they are durable. A message
  // carrying x-opt-scheduled-enqueue-time in the future is held until then.
  accept(raws, cb, { forceSchedule = false } = {}) {
    const now = Date.now();
    let ms;
    try {
      ms = raws.map((r) => this.build(r, now));
    } catch (e) {
      cb(e);
      return;
    }
    for (const m of ms) {
      m.seq = this.nextSeq++;
      if (m.scheduledAt > now || (forceSchedule && m.scheduledAt)) m.state = SCHEDULED;
      this.journal.append(ENQUEUE, this.meta(m), codec.encodeStored(m), null);
    }
    this.journal.append(SEQUENCE, { q: this.key, next: this.nextSeq }, null, (err) => {
      if (err) {
        cb(err);
        return;
      }
      // "sent" counts every message a client handed over, scheduled or not.
      for (const m of ms) {
        this.insert(m);
        if (m.state === SCHEDULED) this.stats.scheduled++;
      }
      this.stats.sent += ms.length;
      this.broker.total.sent += ms.length;
      this.kick();
      cb(null, ms.map((m) => m.seq));
    });
  }

  meta(m) {
    return { q: this.key, s: m.seq, t: m.enqueuedAt, st: m.state, dc: m.dc, sa: m.scheduledAt };
  }

  insert(m) {
    this.messages.set(m.seq, m);
    this.bytes += m.size;
    this.broker.liveBytes += m.size;
    if (m.expiresAt) this.hasMessageTtl = true;
    if (m.state === SCHEDULED) this.scheduled.add(m);
    else if (m.state === ACTIVE) this.makeAvailable(m);
  }

  remove(m) {
    if (!this.messages.delete(m.seq)) return;
    this.bytes -= m.size;
    this.broker.liveBytes -= m.size;
    if (m.lock) this.unlockOnly(m);
    this.scheduled.delete(m);
    m.state = -1;
    this.journal.append(DELETE, { q: this.key, s: m.seq }, null, null);
  }

  // drop forgets a message without journaling it (used while replaying).
  drop(m) {
    this.messages.delete(m.seq);
    this.scheduled.delete(m);
    this.bytes -= m.size;
    this.broker.liveBytes -= m.size;
    m.state = -1;
  }

  makeAvailable(m) {
    if (!m.inHeap) {
      m.inHeap = true;
      this.available.push(m);
    }
  }

  // --- delivery -----------------------------------------------------------

  addConsumer(c) {
    this.consumers.push(c);
    this.kick();
  }

  removeConsumer(c) {
    const i = this.consumers.indexOf(c);
    if (i >= 0) this.consumers.splice(i, 1);
    // Locks held through a link that is gone can no longer be settled on it;
    // hand the messages to other receivers without counting a failed delivery.
    for (const m of [...this.locked.values()]) {
      if (m.lock.consumer === c) {
        this.unlockOnly(m);
        this.makeAvailable(m);
      }
    }
    this.kick();
  }

  // kick schedules a dispatch pass; passes are coalesced per event-loop turn.
  kick() {
    if (this.dispatchQueued) return;
    this.dispatchQueued = true;
    process.nextTick(() => { this.dispatchQueued = false; this.dispatch(); });
  }

  dispatch() {
    const cs = this.consumers;
    if (cs.length === 0) return;
    const now = Date.now();
    let idle = 0;
    while (this.available.size > 0 && idle < cs.length) {
      const c = cs[this.rr % cs.length];
      this.rr++;
      if (!c.canSend()) {
        idle++;
        continue;
      }
      idle = 0;
      let m = null;
      while (this.available.size > 0) {
        const x = this.available.pop();
        x.inHeap = false;
        if (x.state !== ACTIVE || x.lock || !this.messages.has(x.seq)) continue;
        if (x.expiresAt && x.expiresAt <= now) {
          this.expire(x);
          continue;
        }
        m = x;
        break;
      }
      if (!m) break;
      this.deliver(c, m, now);
    }
  }

  headerTtl(m) {
    return m.effectiveTtl !== Infinity && m.effectiveTtl <= 0xffffffff ? m.effectiveTtl : undefined;
  }

  deliver(c, m, now) {
    this.stats.received++;
    this.broker.total.received++;
    if (c.peekLock) {
      const token = newLockToken();
      const until = now + this.cfg.lockDurationMs;
      const buf = codec.encode(m, { deliveryCount: m.dc, lockedUntil: until, headerTtl: this.headerTtl(m) });
      this.lock(m, token, until, c);
      m.lock.delivery = c.send(m, buf, dotnetOrder(token), false);
    } else {
      const buf = codec.encode(m, { deliveryCount: m.dc, headerTtl: this.headerTtl(m) });
      this.remove(m);
      c.send(m, buf, null, true);
    }
  }

  lock(m, token, until, consumer) {
    const key = token.toString('hex');
    m.lock = { token, key, until, consumer, delivery: null };
    this.locked.set(key, m);
  }

  unlockOnly(m) {
    this.locked.delete(m.lock.key);
    m.lock = null;
  }

  // byToken returns the message a lock token (RFC byte order) names, or
  // throws LockLostError when the lock has expired or never existed.
  byToken(token) {
    const m = this.locked.get(Buffer.from(token).toString('hex'));
    if (!m) throw new LockLostError('The lock supplied is invalid. Either the lock expired, or the message has already been removed from the queue.');
    return m;
  }

  checkLock(m, delivery) {
    if (!m.lock || (delivery && m.lock.delivery !== delivery) || this.messages.get(m.seq) !== m) {
      this.stats.lockLost++;
      throw new LockLostError('The lock supplied is invalid. Either the lock expired, or the message has already been removed from the queue.');
    }
  }

  // --- settlement ---------------------------------------------------------

  complete(m) {
    this.remove(m);
    this.stats.completed++;
    this.broker.total.completed++;
  }

  abandon(m, props) {
    this.unlockOnly(m);
    this.stats.abandoned++;
    if (props && Object.keys(props).length) m.appProperties = codec.setAppProperties(m.appProperties, props);
    this.failedDelivery(m);
  }

  // failedDelivery counts a delivery attempt that did not end in settlement
  // (abandon, lock expiry) and dead-letters the message past maxDeliveryCount.
  failedDelivery(m) {
    m.dc++;
    if (!this.parent && m.dc >= this.cfg.maxDeliveryCount) {
      this.deadLetter(m, 'MaxDeliveryCountExceeded',
        `Message could not be consumed after ${this.cfg.maxDeliveryCount} delivery attempts.`, null);
      return;
    }
    if (m.state === ACTIVE) this.makeAvailable(m);
    this.journal.append(UPDATE, { q: this.key, s: m.seq, dc: m.dc, st: m.state }, null, null);
    this.kick();
  }

  release(m) {
    this.unlockOnly(m);
    this.stats.released++;
    if (m.state === ACTIVE) this.makeAvailable(m);
    this.kick();
  }

  defer(m, props) {
    this.unlockOnly(m);
    if (props && Object.keys(props).length) m.appProperties = codec.setAppProperties(m.appProperties, props);
    m.state = DEFERRED;
    this.stats.deferred++;
    this.journal.append(UPDATE, { q: this.key, s: m.seq, dc: m.dc, st: m.state }, null, null);
  }

  deadLetter(m, reason, description, props) {
    const extra = { ...(props || {}) };
    if (reason !== undefined && reason !== null) extra.DeadLetterReason = String(reason);
    if (description !== undefined && description !== null) extra.DeadLetterErrorDescription = String(description);
    if (this.parent) {
      // Dead-lettering from a dead-letter queue only updates the properties.
      this.unlockOnly(m);
      m.appProperties = codec.setAppProperties(m.appProperties, extra);
      this.makeAvailable(m);
      this.journal.append(ENQUEUE, this.meta(m), codec.encodeStored(m), null);
      this.kick();
      return;
    }
    this.remove(m);
    this.stats.deadLettered++;
    this.broker.total.deadLettered++;
    const dlq = this.deadLetterQueue;
    const d = {
      ...m,
      appProperties: codec.setAppProperties(m.appProperties, extra),
      deadLetterSource: this.name,
      state: ACTIVE,
      lock: null,
      inHeap: false,
    };
    dlq.setExpiry(d);
    dlq.insert(d);
    this.journal.append(ENQUEUE, dlq.meta(d), codec.encodeStored(d), null);
    dlq.kick();
  }

  expire(m) {
    this.stats.expired++;
    if (this.cfg.deadLetteringOnMessageExpiration && !this.parent) {
      this.deadLetter(m, 'TTLExpiredException', 'The message expired and was dead lettered.', null);
    } else {
      this.remove(m);
    }
  }

  renew(m) {
    m.lock.until = Date.now() + this.cfg.lockDurationMs;
    this.stats.renewed++;
    return m.lock.until;
  }

  // --- management ---------------------------------------------------------

  peek(fromSeq, count) {
    const out = [];
    // Sequence numbers are dense and ascending within a queue, except in a
    // dead-letter queue; walk the map (insertion order is ascending there too).
    const seqs = [...this.messages.keys()].filter((s) => s >= fromSeq).sort((a, b) => a - b);
    for (const s of seqs) {
      if (out.length >= count) break;
      const m = this.messages.get(s);
      out.push(codec.encode(m, {
        deliveryCount: m.dc,
        lockedUntil: m.lock ? m.lock.until : 0,
        state: m.state,
        headerTtl: this.headerTtl(m),
      }));
    }
    return out;
  }

  // receiveDeferred returns encoded deferred messages by sequence number,
  // locked (peek-lock) or removed (receive-and-delete).
  // Like Service Bus, a sequence number that names no deferred message fails
  // the whole call (404, message not found) and locks nothing.
  receiveDeferred(seqs, peekLock) {
    const out = [];
    const now = Date.now();
    for (const s of seqs) {
      const m = this.messages.get(Number(s));
      if (!m || m.state !== DEFERRED) throw new NotFoundError(`The message with sequence number ${s} could not be found in '${this.name}' (it is not deferred, or was settled).`);
      if (m.lock) throw new LockLostError(`The deferred message with sequence number ${s} is locked by another receiver.`);
    }
    for (const s of seqs) {
      const m = this.messages.get(Number(s));
      this.stats.received++;
      this.broker.total.received++;
      if (peekLock) {
        const token = newLockToken();
        const until = now + this.cfg.lockDurationMs;
        this.lock(m, token, until, null);
        out.push(codec.encode(m, { deliveryCount: m.dc, lockedUntil: until, lockToken: token, state: DEFERRED, headerTtl: this.headerTtl(m) }));
      } else {
        out.push(codec.encode(m, { deliveryCount: m.dc, state: DEFERRED, headerTtl: this.headerTtl(m) }));
        this.remove(m);
      }
    }
    return out;
  }

  cancelScheduled(seqs) {
    for (const s of seqs) {
      const m = this.messages.get(Number(s));
      if (m && m.state === SCHEDULED) {
        this.remove(m);
        this.stats.cancelled++;
      }
    }
  }

  // --- timers -------------------------------------------------------------

  tick(now, sweep) {
    for (const m of this.locked.values()) {
      if (m.lock.until <= now) {
        this.stats.lockExpired++;
        this.unlockOnly(m);
        if (m.state === DEFERRED) continue; // stays deferred
        this.failedDelivery(m);
      }
    }
    for (const m of this.scheduled) {
      if (m.scheduledAt <= now) {
        this.scheduled.delete(m);
        m.state = ACTIVE;
        m.enqueuedAt = now;
        this.setExpiry(m);
        this.journal.append(ENQUEUE, this.meta(m), codec.encodeStored(m), null);
        this.makeAvailable(m);
        this.kick();
      }
    }
    if (sweep && (this.cfg.ttlMs !== Infinity || this.hasMessageTtl)) {
      for (const m of this.messages.values()) {
        if (m.expiresAt && m.expiresAt <= now && !m.lock && m.state !== SCHEDULED) this.expire(m);
      }
    }
  }

  counts() {
    let active = 0;
    let deferred = 0;
    for (const m of this.messages.values()) {
      if (m.state === ACTIVE) active++;
      else if (m.state === DEFERRED) deferred++;
    }
    return { active, locked: this.locked.size, deferred, scheduled: this.scheduled.size, bytes: this.bytes };
  }
}

class Broker {
  constructor(config, journal, log) {
    this.journal = journal;
    this.log = log;
    this.liveBytes = 0;
    this.total = { sent: 0, received: 0, completed: 0, deadLettered: 0 };
    this.queues = new Map(); // lower-case entity path -> Queue (dead-letter queues too)
    for (const qc of config.queues) {
      const q = new Queue(this, qc, null);
      this.queues.set(q.key, q);
      this.queues.set(q.deadLetterQueue.key, q.deadLetterQueue);
    }
    journal.liveBytes = () => this.liveBytes;
    journal.snapshot = () => this.snapshot();
  }

  // entity resolves an address such as "provision" or
  // "Provision/$DeadLetterQueue" (case-insensitively), or returns null.
  entity(address) {
    if (typeof address !== 'string') return null;
    let a = address.toLowerCase();
    const m = /^amqps?:\/\/[^/]+\/(.*)$/.exec(a);
    if (m) a = m[1];
    a = a.replace(/^\/+|\/+$/g, '');
    return this.queues.get(a) || null;
  }

  // restore rebuilds the queues from the journal and rewrites it compacted.
  restore() {
    if (!this.journal.durable) return;
    let dropped = 0;
    this.journal.replay((type, meta, payload) => {
      const q = this.queues.get(meta.q);
      if (!q) {
        dropped++;
        return;
      }
      switch (type) {
        case ENQUEUE: {
          const old = q.messages.get(meta.s);
          if (old) q.drop(old);
          const p = codec.parseStored(payload);
          const m = {
            seq: meta.s, enqueuedAt: meta.t, durable: p.durable, ttl: p.ttl,
            annotations: p.annotations, properties: p.properties, appProperties: p.appProperties, body: p.body,
            scheduledAt: meta.sa || 0, deadLetterSource: p.deadLetterSource, state: meta.st, dc: meta.dc,
            expiresAt: 0, size: payload.length, lock: null, inHeap: false,
          };
          q.setExpiry(m);
          q.insert(m);
          if (meta.s >= q.nextSeq && !q.parent) q.nextSeq = meta.s + 1;
          break;
        }
        case DELETE: {
          const m = q.messages.get(meta.s);
          if (m) q.drop(m);
          break;
        }
        case UPDATE: {
          const m = q.messages.get(meta.s);
          if (m) {
            m.dc = meta.dc;
            m.state = meta.st;
            if (m.state === ACTIVE) q.makeAvailable(m);
          }
          break;
        }
        case SEQUENCE:
          if (meta.next > q.nextSeq) q.nextSeq = meta.next;
          break;
        default:
      }
    });
    if (dropped) this.log(`journal: dropped ${dropped} records of queues no longer in the config`);
    this.journal.rewrite();
    let n = 0;
    for (const q of this.queues.values()) n += q.messages.size;
    this.log(`restored ${n} messages`);
  }

  *snapshot() {
    for (const q of this.queues.values()) {
      if (!q.parent) yield [SEQUENCE, { q: q.key, next: q.nextSeq }, null];
      for (const m of q.messages.values()) yield [ENQUEUE, q.meta(m), codec.encodeStored(m)];
    }
  }

  tick() {
    const now = Date.now();
    const sweep = now - (this.lastSweep || 0) >= 1000;
    if (sweep) this.lastSweep = now;
    for (const q of this.queues.values()) q.tick(now, sweep);
  }

  stats() {
    const queues = {};
    for (const q of this.queues.values()) queues[q.name] = { ...q.stats, ...q.counts() };
    return { total: { ...this.total }, queues };
  }
}

module.exports = { Broker, Queue, LockLostError, NotFoundError, ACTIVE, DEFERRED, SCHEDULED, DLQ_SUFFIX, dotnetOrder };
