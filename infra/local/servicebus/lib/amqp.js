'use strict';
// AMQP 1.0 front end on rhea: SASL ANONYMOUS, CBS put-token, entity links
// (send, peek-lock, receive-and-delete) and the $management operations the
// azservicebus SDK uses. The contract is spec/local-emulation.md §3.

const rhea = require('rhea');
const { LockLostError, NotFoundError } = require('./broker.js');

const types = rhea.types;
const amqpMessage = rhea.message;

// rhea decodes every incoming message into plain JS values, which loses the
// AMQP types of application properties. The broker stores the raw bytes
// instead, so decoding is deferred: links see {raw}, and the RPC handlers
// decode explicitly.
const decode = amqpMessage.decode;
amqpMessage.decode = (buf) => ({ raw: buf });

const BATCH_FORMAT = 0x80013700;
const MAX_MESSAGE_SIZE = 256 * 1024; // Standard tier
const LOCK_LOST = 'com.microsoft:message-lock-lost';

function isManagement(address) {
  return typeof address === 'string' && /\/\$management$/i.test(address);
}

function addressOf(terminus) {
  return terminus && typeof terminus.address === 'string' ? terminus.address : undefined;
}

class Server {
  constructor(broker, log) {
    this.broker = broker;
    this.log = log;
    this.connections = new Set();
    const c = rhea.create_container({ id: 'sbemulator' });
    this.container = c;
    c.on('connection_open', (ctx) => this.onConnectionOpen(ctx.connection));
    c.on('sender_open', (ctx) => this.onSenderOpen(ctx.connection, ctx.sender));
    c.on('receiver_open', (ctx) => this.onReceiverOpen(ctx.connection, ctx.receiver));
    c.on('disconnected', (ctx) => this.onGone(ctx.connection));
    c.on('connection_close', (ctx) => this.onGone(ctx.connection));
    c.on('error', (e) => this.log(`amqp: ${e.message}`));
  }

  listen(host, port, cb) {
    this.server = this.container.listen({
      host,
      port,
      autoaccept: false,
      treat_modified_as_released: false,
      // Peek-locked deliveries stay in rhea's per-session buffer until they
      // are settled; make it large enough that slow settlement never stalls.
      session_buffer_size: 1 << 20,
    });
    this.server.on('listening', () => cb(null, this.server.address().port));
    this.server.on('error', (e) => cb(e));
  }

  close(cb) {
    for (const conn of this.connections) {
      try { conn.socket && conn.socket.destroy(); } catch { /* closing */ }
    }
    if (this.server) this.server.close(cb);
    else cb();
  }

  onConnectionOpen(conn) {
    this.connections.add(conn);
    conn._sb = { replies: new Map(), consumers: new Set() };
  }

  state(conn) {
    if (!conn._sb) this.onConnectionOpen(conn);
    return conn._sb;
  }

  onGone(conn) {
    const st = conn._sb;
    if (!st) return;
    for (const c of st.consumers) c.queue.removeConsumer(c);
    st.consumers.clear();
    st.replies.clear();
    this.connections.delete(conn);
  }

  // refuse answers an attach with null termini and a detach carrying the
  // error, which go-amqp then reports to the caller.
  refuse(link, address, why) {
    link.local.attach.source = null;
    link.local.attach.target = null;
    link.close({ condition: 'amqp:not-found', description: why || `The messaging entity '${address}' could not be found.` });
  }

  echoSettleModes(link) {
    link.local.attach.snd_settle_mode = link.remote.attach.snd_settle_mode;
    link.local.attach.rcv_settle_mode = link.remote.attach.rcv_settle_mode;
  }

  // onSenderOpen handles a client receiver: an entity receiver, or the reply
  // side of a CBS / management request-response pair.
  onSenderOpen(conn, link) {
    const st = this.state(conn);
    const source = addressOf(link.remote.attach.source);
    const target = addressOf(link.remote.attach.target);
    this.echoSettleModes(link);
    if (hasSessionFilter(link.remote.attach.source)) {
      // Refused with a null source, so go-amqp reports the detach error.
      link.local.attach.source = null;
      link.close({ condition: 'amqp:not-implemented', description: 'The Service Bus emulator does not support sessions.' });
      return;
    }
    // Build fresh termini: echoing the peer's decoded ones produces a
    // composite go-amqp rejects.
    link.set_source({ address: source });
    if (target !== undefined) link.set_target({ address: target });
    if (source === '$cbs' || isManagement(source)) {
      if (target !== undefined) st.replies.set(target, link);
      link.on('sender_close', () => { if (st.replies.get(target) === link) st.replies.delete(target); });
      return;
    }
    const queue = this.broker.entity(source);
    if (!queue) {
      this.refuse(link, source);
      return;
    }
    const consumer = {
      queue,
      peekLock: link.remote.attach.rcv_settle_mode === 1,
      sent: 0,
      // rhea counts credit down only when a transfer goes out, so track what
      // is queued on the link but not yet transferred.
      canSend: () => link.is_open() && link.credit - (consumer.sent - link.delivery_count) > 0,
      send: (m, buf, tag, settled) => {
        consumer.sent++;
        const d = link.send(buf, tag || Buffer.alloc(16), 0);
        if (settled) d.settled = true;
        d.sbMsg = m;
        return d;
      },
    };
    st.consumers.add(consumer);
    link.on('sendable', () => queue.kick());
    link.on('sender_flow', () => queue.kick());
    link.on('accepted', (ctx) => this.settle(queue, ctx.delivery, 'complete'));
    link.on('released', (ctx) => this.settle(queue, ctx.delivery, 'release'));
    link.on('modified', (ctx) => this.settle(queue, ctx.delivery, 'modified'));
    link.on('rejected', (ctx) => this.settle(queue, ctx.delivery, 'rejected'));
    const gone = () => {
      if (st.consumers.delete(consumer)) queue.removeConsumer(consumer);
    };
    link.on('sender_close', gone);
    link.on('sender_error', gone);
    queue.addConsumer(consumer);
  }

  // settle applies a client's disposition for a peek-locked delivery and
  // confirms it with a settled disposition (the SDK waits for that).
  settle(queue, delivery, kind) {
    const m = delivery.sbMsg;
    if (!m || delivery.settled) return;
    let reply;
    try {
      queue.checkLock(m, delivery);
      const state = delivery.remote_state;
      switch (kind) {
        case 'complete':
          queue.complete(m);
          reply = amqpMessage.accepted().described();
          break;
        case 'release':
          queue.release(m);
          reply = amqpMessage.released().described();
          break;
        case 'modified': {
          const props = annotationsToProps(state.value[2]);
          if (state.undeliverable_here) queue.defer(m, props);
          else queue.abandon(m, props);
          reply = state.described();
          break;
        }
        case 'rejected': {
          const err = state.error || {};
          const info = (err.info && typeof err.info === 'object') ? { ...err.info } : {};
          const reason = info.DeadLetterReason;
          const description = info.DeadLetterErrorDescription;
          delete info.DeadLetterReason;
          delete info.DeadLetterErrorDescription;
          queue.deadLetter(m, reason, description, info);
          reply = amqpMessage.rejected().described();
          break;
        }
        default:
          return;
      }
    } catch (e) {
      if (!(e instanceof LockLostError)) this.log(`settle: ${e.stack || e}`);
      const condition = e instanceof LockLostError ? LOCK_LOST : 'amqp:internal-error';
      reply = amqpMessage.rejected({ error: { condition, description: e.message } }).described();
    }
    if (!delivery.remote_settled) {
      delivery.update(true, reply);
      delivery.remote_settled = true;
    } else {
      delivery.settled = true;
    }
  }

  // onReceiverOpen handles a client sender: entity sends, CBS requests and
  // management requests.
  onReceiverOpen(conn, link) {
    const st = this.state(conn);
    const target = addressOf(link.remote.attach.target);
    const source = addressOf(link.remote.attach.source);
    this.echoSettleModes(link);
    link.set_target({ address: target });
    if (source !== undefined) link.set_source({ address: source });
    link.local.attach.max_message_size = MAX_MESSAGE_SIZE;
    if (target === '$cbs') {
      link.on('message', (ctx) => this.onCbs(st, ctx));
      return;
    }
    if (isManagement(target)) {
      const queue = this.broker.entity(target.replace(/\/\$management$/i, ''));
      if (!queue) {
        this.refuse(link, target.replace(/\/\$management$/i, ''));
        return;
      }
      link.on('message', (ctx) => this.onManagement(st, queue, ctx));
      return;
    }
    const queue = this.broker.entity(target);
    if (!queue) {
      this.refuse(link, target);
      return;
    }
    if (queue.parent) {
      link.local.attach.target = null;
      link.close({ condition: 'amqp:not-allowed', description: `Cannot send to the dead-letter queue '${queue.name}'.` });
      return;
    }
    link.on('message', (ctx) => this.onSend(queue, ctx));
  }

  onSend(queue, ctx) {
    const d = ctx.delivery;
    const raw = ctx.format === BATCH_FORMAT ? null : ctx.message.raw;
    let raws;
    if (ctx.format === BATCH_FORMAT) {
      try {
        raws = require('./codec.js').splitBatch(ctx.message);
      } catch (e) {
        d.reject({ condition: 'amqp:decode-error', description: `malformed batch: ${e.message}` });
        return;
      }
    } else if (ctx.format && ctx.format !== 0) {
      d.reject({ condition: 'amqp:not-implemented', description: `message format ${ctx.format} is not supported` });
      return;
    } else {
      raws = [raw];
    }
    if (raws.reduce((n, r) => n + r.length, 0) > MAX_MESSAGE_SIZE) {
      d.reject({ condition: 'amqp:link:message-size-exceeded', description: `message larger than ${MAX_MESSAGE_SIZE} bytes` });
      return;
    }
    queue.accept(raws, (err) => {
      if (err) {
        this.log(`send to ${queue.name}: ${err.message}`);
        d.reject({ condition: 'amqp:internal-error', description: err.message });
        return;
      }
      d.accept();
    });
  }

  reply(st, request, status, description, body) {
    const link = st.replies.get(request.reply_to);
    if (!link) {
      this.log(`rpc: no reply link for ${request.reply_to}`);
      return;
    }
    const msg = {
      correlation_id: request.message_id,
      application_properties: {
        'status-code': types.wrap_int(status),
        'status-description': description,
      },
    };
    if (body !== undefined) msg.body = body;
    link.send(msg);
  }

  onCbs(st, ctx) {
    const req = decode(ctx.message.raw);
    ctx.delivery.update(true, amqpMessage.accepted().described());
    const ap = req.application_properties || {};
    if (ap.operation !== 'put-token') {
      this.reply(st, req, 400, `unsupported CBS operation ${ap.operation}`);
      return;
    }
    // Tokens are not checked: the emulator guards nothing.
    this.reply(st, req, 202, 'Accepted');
  }

  onManagement(st, queue, ctx) {
    const req = decode(ctx.message.raw);
    ctx.delivery.update(true, amqpMessage.accepted().described());
    const op = (req.application_properties || {}).operation;
    const body = req.body && typeof req.body === 'object' ? req.body : {};
    if (op === 'com.microsoft:schedule-message') {
      this.schedule(st, queue, req, body);
      return;
    }
    try {
      const res = this.management(queue, op, body);
      this.reply(st, req, res.status, res.description || 'OK', res.body === undefined ? {} : res.body);
    } catch (e) {
      if (e instanceof LockLostError) {
        this.reply(st, req, 410, e.message, {});
      } else if (e instanceof NotFoundError) {
        this.reply(st, req, 404, e.message, {});
      } else if (e instanceof BadRequest) {
        this.reply(st, req, 400, e.message, {});
      } else {
        this.log(`management ${op}: ${e.stack || e}`);
        this.reply(st, req, 500, e.message, {});
      }
    }
  }

  // schedule enqueues messages carrying x-opt-scheduled-enqueue-time and
  // answers with their sequence numbers once they are durable.
  schedule(st, queue, req, body) {
    let raws;
    try {
      raws = list(body.messages, 'messages').map((it) => {
        if (!it || !Buffer.isBuffer(it.message)) throw new BadRequest('messages[].message must be binary');
        return it.message;
      });
    } catch (e) {
      this.reply(st, req, 400, e.message, {});
      return;
    }
    queue.accept(raws, (err, seqs) => {
      if (err) {
        this.reply(st, req, 500, err.message, {});
        return;
      }
      this.reply(st, req, 200, 'OK', { 'sequence-numbers': types.wrap_array(seqs, 0x81) });
    });
  }

  management(queue, op, body) {
    switch (op) {
      case 'com.microsoft:renew-lock': {
        const tokens = list(body['lock-tokens'], 'lock-tokens');
        const ms = tokens.map((t) => queue.byToken(t));
        const until = ms.map((m) => queue.renew(m));
        return { status: 200, body: { expirations: types.wrap_array(until, 0x83) } };
      }
      case 'com.microsoft:peek-message': {
        const from = Number(body['from-sequence-number'] || 0);
        const count = Number(body['message-count'] || 1);
        const msgs = queue.peek(from, count);
        if (msgs.length === 0) return { status: 204, description: 'No messages' };
        return { status: 200, body: { messages: types.wrap_list(msgs.map((b) => ({ message: b }))) } };
      }
      case 'com.microsoft:receive-by-sequence-number': {
        const seqs = list(body['sequence-numbers'], 'sequence-numbers');
        const peekLock = Number(body['receiver-settle-mode']) !== 0;
        const msgs = queue.receiveDeferred(seqs, peekLock);
        if (msgs.length === 0) return { status: 204, description: 'No messages' };
        return { status: 200, body: { messages: types.wrap_list(msgs.map((b) => ({ message: b }))) } };
      }
      case 'com.microsoft:update-disposition': {
        const tokens = list(body['lock-tokens'], 'lock-tokens');
        const status = body['disposition-status'];
        const props = body['properties-to-modify'] || {};
        const ms = tokens.map((t) => queue.byToken(t));
        for (const m of ms) {
          settleDeliveryLocally(m);
          switch (status) {
            case 'completed': queue.complete(m); break;
            case 'abandoned': queue.abandon(m, props); break;
            case 'defered': case 'deferred': queue.defer(m, props); break;
            case 'suspended': queue.deadLetter(m, body['deadletter-reason'], body['deadletter-description'], props); break;
            default: throw new BadRequest(`unknown disposition-status ${status}`);
          }
        }
        return { status: 200 };
      }
      case 'com.microsoft:cancel-scheduled-message':
        queue.cancelScheduled(list(body['sequence-numbers'], 'sequence-numbers'));
        return { status: 200 };
      default:
        throw new BadRequest(`operation ${op} is not supported by the emulator`);
    }
  }
}

// settleDeliveryLocally marks the link delivery of a message settled through
// $management, so rhea can drop it from the session buffer.
function settleDeliveryLocally(m) {
  const d = m.lock && m.lock.delivery;
  if (d && !d.settled) {
    d.settled = true;
    d.remote_settled = true;
  }
}

class BadRequest extends Error {}

function hasSessionFilter(source) {
  const f = source && source.filter;
  return Boolean(f && typeof f === 'object' && Object.keys(f).some((k) => k.toLowerCase() === 'com.microsoft:session-filter'));
}

function list(v, name) {
  if (Array.isArray(v)) return v;
  if (v === undefined || v === null) throw new BadRequest(`${name} is required`);
  return [v];
}

// annotationsToProps turns the message-annotations of a modified outcome (the
// SDK's propertiesToModify) into application properties, keeping their types.
function annotationsToProps(typedMap) {
  const out = {};
  if (!typedMap || !Array.isArray(typedMap.value)) return out;
  const items = typedMap.value;
  for (let i = 0; i + 1 < items.length; i += 2) out[String(items[i].value)] = items[i + 1];
  return out;
}

module.exports = { Server };
