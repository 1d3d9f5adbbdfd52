'use strict';
// Message codec at the level of AMQP sections. Messages are kept as the raw
// bytes the client sent (properties, application-properties, body), so every
// value round-trips with the exact AMQP type it had; only the header and the
// message annotations are rebuilt for each delivery.

const rhea = require('rhea');

const types = rhea.types;
const amqpMessage = rhea.message;

const HEADER = 0x70;
const DELIVERY_ANNOTATIONS = 0x71;
const MESSAGE_ANNOTATIONS = 0x72;
const PROPERTIES = 0x73;
const APPLICATION_PROPERTIES = 0x74;

const symbolicCodes = {
  'amqp:header:list': 0x70,
  'amqp:delivery-annotations:map': 0x71,
  'amqp:message-annotations:map': 0x72,
  'amqp:properties:list': 0x73,
  'amqp:application-properties:map': 0x74,
  'amqp:data:binary': 0x75,
  'amqp:amqp-sequence:list': 0x76,
  'amqp:value:*': 0x77,
  'amqp:footer:map': 0x78,
};

// Annotations the broker owns: whatever the client sent under these keys is
// replaced on delivery.
const brokerAnnotations = new Set([
  'x-opt-sequence-number',
  'x-opt-enqueued-time',
  'x-opt-locked-until',
  'x-opt-enqueue-sequence-number',
  'x-opt-message-state',
  'x-opt-deadletter-source',
]);

function sectionCode(section) {
  const d = section.descriptor;
  if (!d) return -1;
  const v = d.value;
  if (typeof v === 'number') return v;
  if (typeof v === 'string') return symbolicCodes[v] || -1;
  if (Buffer.isBuffer(v) && v.length === 8) return Number(v.readBigUInt64BE(0));
  return -1;
}

function typedValue(t) {
  return t && t.value !== undefined ? t.value : undefined;
}

// parse splits an encoded AMQP message into the parts the broker needs. It
// throws on bytes that are not a sequence of described sections.
function parse(buf) {
  const reader = new types.Reader(buf);
  const out = {
    ttl: undefined, // header ttl in ms
    durable: false,
    annotations: [], // flat [key, value, key, value, ...] of typed values
    scheduledAt: 0, // x-opt-scheduled-enqueue-time in ms, 0 if absent
    messageId: undefined,
    properties: null, // raw bytes of the properties section
    appProperties: null, // raw bytes of the application-properties section
    body: null, // raw bytes of every section after them (body, footer)
  };
  let bodyStart = -1;
  while (reader.remaining() > 0) {
    const start = reader.position;
    const s = reader.read();
    const end = reader.position;
    const code = sectionCode(s);
    switch (code) {
      case HEADER: {
        const f = s.value || [];
        out.durable = Boolean(typedValue(f[0]));
        const ttl = typedValue(f[2]);
        if (typeof ttl === 'number' && ttl > 0) out.ttl = ttl;
        break;
      }
      case DELIVERY_ANNOTATIONS:
        break; // per-hop; never stored
      case MESSAGE_ANNOTATIONS: {
        const items = s.value || [];
        for (let i = 0; i + 1 < items.length; i += 2) {
          const key = String(typedValue(items[i]));
          if (key === 'x-opt-scheduled-enqueue-time') {
            const v = typedValue(items[i + 1]);
            if (v instanceof Date) out.scheduledAt = v.getTime();
            else if (typeof v === 'number') out.scheduledAt = v;
          }
          if (brokerAnnotations.has(key)) continue;
          out.annotations.push(items[i], items[i + 1]);
        }
        break;
      }
      case PROPERTIES: {
        out.properties = buf.subarray(start, end);
        const id = typedValue((s.value || [])[0]);
        if (typeof id === 'string') out.messageId = id;
        break;
      }
      case APPLICATION_PROPERTIES:
        out.appProperties = buf.subarray(start, end);
        break;
      default:
        if (code < 0x75 || code > 0x78) {
          throw new Error(`unexpected message section with descriptor 0x${code.toString(16)}`);
        }
        if (bodyStart < 0) bodyStart = start;
    }
    if (code >= 0x75 && code <= 0x78 && bodyStart < 0) bodyStart = start;
  }
  out.body = bodyStart >= 0 ? buf.subarray(bodyStart) : Buffer.alloc(0);
  return out;
}

// splitBatch returns the encoded messages inside a batch envelope (message
// format 0x80013700): one data section per message.
function splitBatch(buf) {
  const reader = new types.Reader(buf);
  const messages = [];
  while (reader.remaining() > 0) {
    const s = reader.read();
    if (sectionCode(s) === 0x75) messages.push(Buffer.from(s.value));
  }
  return messages;
}

// setAppProperties returns an application-properties section holding the
// entries of raw (if any) with the entries of extra (plain JS values or typed
// values) put over them.
function setAppProperties(raw, extra) {
  const items = [];
  if (raw) {
    const s = new types.Reader(raw).read();
    const old = s.value || [];
    for (let i = 0; i + 1 < old.length; i += 2) {
      if (Object.prototype.hasOwnProperty.call(extra, String(typedValue(old[i])))) continue;
      items.push(old[i], old[i + 1]);
    }
  }
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) continue;
    items.push(types.wrap_string(k), types.wrap(v));
  }
  const w = new types.Writer();
  w.write(types.described_nc(types.wrap_ulong(APPLICATION_PROPERTIES), types.Map32(items)));
  return w.toBuffer();
}

// encode builds the message the client receives. m is a stored message (see
// broker.js); extra carries the per-delivery values.
function encode(m, { deliveryCount, lockedUntil, lockToken, state, headerTtl }) {
  const w = new types.Writer();
  const header = { durable: m.durable, delivery_count: deliveryCount };
  if (headerTtl !== undefined) header.ttl = headerTtl;
  w.write(amqpMessage.header(header).described());
  if (lockToken) {
    w.write(types.described_nc(types.wrap_ulong(DELIVERY_ANNOTATIONS),
      types.Map32([types.wrap_symbol('x-opt-lock-token'), types.wrap_uuid(lockToken)])));
  }
  const ann = m.annotations.slice();
  ann.push(types.wrap_symbol('x-opt-sequence-number'), types.wrap_long(m.seq));
  ann.push(types.wrap_symbol('x-opt-enqueue-sequence-number'), types.wrap_long(m.seq));
  ann.push(types.wrap_symbol('x-opt-enqueued-time'), types.wrap_timestamp(m.enqueuedAt));
  if (lockedUntil) ann.push(types.wrap_symbol('x-opt-locked-until'), types.wrap_timestamp(lockedUntil));
  if (state) ann.push(types.wrap_symbol('x-opt-message-state'), types.wrap_int(state));
  if (m.deadLetterSource) ann.push(types.wrap_symbol('x-opt-deadletter-source'), types.wrap_string(m.deadLetterSource));
  w.write(types.described_nc(types.wrap_ulong(MESSAGE_ANNOTATIONS), types.Map32(ann)));
  const head = w.toBuffer();
  const parts = [head];
  if (m.properties) parts.push(m.properties);
  if (m.appProperties) parts.push(m.appProperties);
  parts.push(m.body);
  return Buffer.concat(parts);
}

// encodeStored is the form written to the journal: header, the client's
// annotations, properties, application properties and body.
function encodeStored(m) {
  const w = new types.Writer();
  const header = { durable: m.durable };
  if (m.ttl !== undefined && m.ttl <= 0xffffffff) header.ttl = m.ttl;
  w.write(amqpMessage.header(header).described());
  const ann = m.annotations.slice();
  if (m.deadLetterSource) ann.push(types.wrap_symbol('x-opt-deadletter-source'), types.wrap_string(m.deadLetterSource));
  if (ann.length) w.write(types.described_nc(types.wrap_ulong(MESSAGE_ANNOTATIONS), types.Map32(ann)));
  const parts = [w.toBuffer()];
  if (m.properties) parts.push(m.properties);
  if (m.appProperties) parts.push(m.appProperties);
  parts.push(m.body);
  return Buffer.concat(parts);
}

// parseStored reverses encodeStored.
function parseStored(buf) {
  const p = parse(buf);
  // x-opt-deadletter-source is a broker annotation, so parse dropped it; find it again.
  const reader = new types.Reader(buf);
  while (reader.remaining() > 0) {
    const s = reader.read();
    if (sectionCode(s) !== MESSAGE_ANNOTATIONS) continue;
    const items = s.value || [];
    for (let i = 0; i + 1 < items.length; i += 2) {
      if (String(typedValue(items[i])) === 'x-opt-deadletter-source') {
        p.deadLetterSource = String(typedValue(items[i + 1]));
      }
    }
    break;
  }
  return p;
}

module.exports = { parse, parseStored, splitBatch, setAppProperties, encode, encodeStored, types, amqpMessage };
