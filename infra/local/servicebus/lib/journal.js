'use strict';
// Append-only journal with group commit. Records written in the same turn of
// the event loop share one write and one fdatasync; a send is acknowledged
// only after its record is on disk. At start the journal is replayed and
// rewritten compacted (temp file, fsync, rename), and it is compacted again
// whenever it grows much larger than the live data.
//
// Record: u32 length of what follows | u8 type | u32 meta length | meta JSON | payload

const fs = require('fs');
const path = require('path');

const ENQUEUE = 1; // meta: message state; payload: stored message
const DELETE = 2; // meta: {q, s}
const UPDATE = 3; // meta: {q, s, dc, st}
const SEQUENCE = 4; // meta: {q, next}: next sequence number of a queue

const COMPACT_MIN_BYTES = 64 << 20;

function encodeRecord(type, meta, payload) {
  const metaBuf = Buffer.from(JSON.stringify(meta));
  const plen = payload ? payload.length : 0;
  const head = Buffer.allocUnsafe(9);
  head.writeUInt32BE(5 + metaBuf.length + plen, 0);
  head.writeUInt8(type, 4);
  head.writeUInt32BE(metaBuf.length, 5);
  return payload ? [head, metaBuf, payload] : [head, metaBuf];
}

class Journal {
  // dir: data directory, or '' for a memory-only broker (appends complete at once).
  constructor(dir, log) {
    this.dir = dir;
    this.file = dir ? path.join(dir, 'journal.bin') : '';
    this.log = log;
    this.fd = -1;
    this.pending = []; // Buffers not yet written
    this.pendingBytes = 0;
    this.waiters = []; // callbacks for the pending records
    this.flushing = false;
    this.scheduled = false;
    this.size = 0;
    this.snapshot = null; // function returning the live records, set by the broker
    this.compactMinBytes = COMPACT_MIN_BYTES;
  }

  get durable() { return Boolean(this.dir); }

  // replay calls fn(type, meta, payload) for every complete record. A torn
  // record at the tail (a crash mid-write) is ignored; it was never acknowledged.
  replay(fn) {
    if (!this.dir) return;
    fs.mkdirSync(this.dir, { recursive: true });
    let buf;
    try {
      buf = fs.readFileSync(this.file);
    } catch (e) {
      if (e.code === 'ENOENT') return;
      throw e;
    }
    let off = 0;
    let n = 0;
    while (off + 4 <= buf.length) {
      const len = buf.readUInt32BE(off);
      if (len < 5 || off + 4 + len > buf.length) break;
      const type = buf.readUInt8(off + 4);
      const mlen = buf.readUInt32BE(off + 5);
      if (9 + mlen > 4 + len) break;
      let meta;
      try {
        meta = JSON.parse(buf.toString('utf8', off + 9, off + 9 + mlen));
      } catch {
        break;
      }
      const payload = buf.subarray(off + 9 + mlen, off + 4 + len);
      fn(type, meta, Buffer.from(payload));
      off += 4 + len;
      n++;
    }
    if (off < buf.length) {
      this.log(`journal ${this.file}: ignoring ${buf.length - off} bytes of an incomplete record at the end`);
    }
    this.log(`journal ${this.file}: replayed ${n} records`);
  }

  // rewrite replaces the journal with the records the snapshot function
  // returns (plus any not yet written) and opens it for appending.
  rewrite() {
    if (!this.dir) return;
    const tmp = this.file + '.tmp';
    const fd = fs.openSync(tmp, 'w');
    let size = 0;
    const chunk = [];
    let chunkBytes = 0;
    const flushChunk = () => {
      if (chunk.length) fs.writeSync(fd, Buffer.concat(chunk, chunkBytes));
      chunk.length = 0;
      chunkBytes = 0;
    };
    const add = (parts) => {
      for (const p of parts) {
        chunk.push(p);
        chunkBytes += p.length;
        size += p.length;
      }
      if (chunkBytes > 1 << 20) flushChunk();
    };
    for (const [type, meta, payload] of this.snapshot()) add(encodeRecord(type, meta, payload));
    add(this.pending);
    flushChunk();
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.renameSync(tmp, this.file);
    const dfd = fs.openSync(this.dir, 'r');
    fs.fsyncSync(dfd);
    fs.closeSync(dfd);
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = fs.openSync(this.file, 'a');
    this.size = size;
    this.pending = [];
    this.pendingBytes = 0;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w(null);
  }

  // append queues a record; onDurable (optional) runs once it is on disk.
  append(type, meta, payload, onDurable) {
    if (!this.dir) {
      if (onDurable) onDurable(null);
      return;
    }
    for (const p of encodeRecord(type, meta, payload)) {
      this.pending.push(p);
      this.pendingBytes += p.length;
    }
    if (onDurable) this.waiters.push(onDurable);
    if (!this.flushing && !this.scheduled) {
      this.scheduled = true;
      setImmediate(() => { this.scheduled = false; this.flush(); });
    }
  }

  flush() {
    if (this.flushing || this.pending.length === 0) return;
    if (this.size > this.compactMinBytes && this.size > 4 * this.liveBytes()) {
      try {
        this.rewrite();
        this.log(`journal ${this.file}: compacted to ${this.size} bytes`);
        return;
      } catch (e) {
        this.log(`journal ${this.file}: compaction failed, appending instead: ${e.message}`);
      }
    }
    const buf = Buffer.concat(this.pending, this.pendingBytes);
    const waiters = this.waiters;
    this.pending = [];
    this.pendingBytes = 0;
    this.waiters = [];
    this.flushing = true;
    const done = (err) => {
      this.flushing = false;
      if (err) this.log(`journal ${this.file}: write failed: ${err.message}`);
      else this.size += buf.length;
      for (const w of waiters) w(err);
      if (this.pending.length) this.flush();
    };
    fs.write(this.fd, buf, 0, buf.length, null, (err) => {
      if (err) return done(err);
      fs.fdatasync(this.fd, done);
    });
  }

  liveBytes() { return 0; } // replaced by the broker

  // close writes what is still pending and closes the file. It waits for a
  // write already in flight, so records reach the file in order.
  close(cb) {
    if (this.flushing) {
      const check = setInterval(() => {
        if (!this.flushing) {
          clearInterval(check);
          this.close(cb);
        }
      }, 5);
      return;
    }
    if (this.fd >= 0) {
      try {
        if (this.pending.length) fs.writeSync(this.fd, Buffer.concat(this.pending, this.pendingBytes));
        fs.fdatasyncSync(this.fd);
      } catch (e) {
        this.log(`journal ${this.file}: final write failed: ${e.message}`);
      }
      fs.closeSync(this.fd);
      this.fd = -1;
    }
    this.pending = [];
    this.pendingBytes = 0;
    if (cb) cb();
  }
}

module.exports = { Journal, ENQUEUE, DELETE, UPDATE, SEQUENCE };
